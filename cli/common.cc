// Helpers shared by the subcommands: error reporting and atomic output files.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "cli/command.h"

namespace cf::cli {

int report(const Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "chunkflow: error: %s\n", status.message().c_str());
  return status.exit_code();
}

Status write_file_atomic(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path temp =
      target.parent_path() / fmt::format(".{}.tmp{}", target.filename().string(), ::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::InvalidInput(fmt::format("{}: cannot write file", path));
    out << text;
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      return Status::Runtime(fmt::format("{}: write failed", path));
    }
  }
  std::error_code ec;
  fs::rename(temp, target, ec);
  if (ec) {
    fs::remove(temp, ec);
    return Status::Runtime(fmt::format("{}: cannot move into place: {}", path, ec.message()));
  }
  return Status::Ok();
}

std::string resolved_job_path(const std::string& output_path) {
  std::filesystem::path path(output_path);
  path.replace_extension(".job.yaml");
  return path.string();
}

Status write_with_resolved_job(const std::string& output_path, const std::string& text,
                               const Job& job) {
  CF_RETURN_IF_ERROR(write_file_atomic(output_path, text));
  return write_file_atomic(resolved_job_path(output_path), resolved_yaml(job));
}

std::string written_note(const std::string& output_path) {
  return fmt::format("\ntrace written to {} (resolved job: {})\n", output_path,
                     resolved_job_path(output_path));
}

}  // namespace cf::cli
