// Helpers shared by the subcommands: error reporting and atomic output files.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

Status check_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  // Only a regular file or a missing path is replaced: renaming over a symbolic link would
  // replace the link (not what it points to), and a directory, device, pipe or socket is no
  // file to write a report into. Symbolic links are refused, never followed.
  std::error_code status_error;
  const fs::file_status status = fs::symlink_status(target, status_error);
  if (fs::is_symlink(status)) {
    return Status::InvalidInput(fmt::format(
        "{}: is a symbolic link; chunkflow writes only regular files and does not follow "
        "links: give the path it points to",
        path));
  }
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    return Status::InvalidInput(
        fmt::format("{}: is {}, not a regular file", path,
                    fs::is_directory(status) ? "a directory" : "a device, pipe or socket"));
  }
  return Status::Ok();
}

Status write_file_atomic(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  CF_RETURN_IF_ERROR(check_output_path(path));
  const fs::path target(path);
  const fs::path temp =
      target.parent_path() / fmt::format(".{}.tmp{}", target.filename().string(), ::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) {
      const int error = errno;
      return Status::InvalidInput(
          fmt::format("{}: cannot write file: {}", path, std::strerror(error)));
    }
    out << text;
    out.close();
    if (!out) {
      const int error = errno;
      std::error_code ignored;
      fs::remove(temp, ignored);
      return Status::Runtime(fmt::format("{}: write failed: {}", path, std::strerror(error)));
    }
  }
  std::error_code ec;
  fs::rename(temp, target, ec);
  if (ec) {
    std::error_code ignored;  // the rename's reason is the one to report
    fs::remove(temp, ignored);
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
  // Both paths judged before either is written.
  CF_RETURN_IF_ERROR(check_output_path(output_path));
  CF_RETURN_IF_ERROR(check_output_path(resolved_job_path(output_path)));
  CF_RETURN_IF_ERROR(write_file_atomic(output_path, text));
  return write_file_atomic(resolved_job_path(output_path), resolved_yaml(job));
}

std::string written_note(const std::string& output_path) {
  return fmt::format("\ntrace written to {} (resolved job: {})\n", output_path,
                     resolved_job_path(output_path));
}

}  // namespace cf::cli
