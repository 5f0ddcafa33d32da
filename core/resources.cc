// Named resources: embedded YAMLs with an on-disk override. See resources.h.
#include "core/resources.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

namespace cf {
namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a named pipe";
  if (S_ISSOCK(mode)) return "a socket";
  return "neither a file nor a directory";
}

Status cannot_open(const std::string& path, int error) {
  return Status::InvalidInput(fmt::format("{}: cannot open file: {}", path, std::strerror(error)));
}

}  // namespace

Status check_regular_file(const std::string& path, const struct stat& st, int64_t max_bytes,
                          const char* max_bytes_why) {
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidInput(
        fmt::format("{}: not a regular file ({})", path, file_kind(st.st_mode)));
  }
  if (st.st_size > max_bytes) {
    return Status::InvalidInput(fmt::format("{}: {} bytes, more than the {} allowed ({})", path,
                                            st.st_size, max_bytes, max_bytes_why));
  }
  return Status::Ok();
}

// Defined in the generated embedded_resources.cc.
const std::map<std::string_view, std::string_view>& embedded_resource_table();

const std::string_view* embedded_file(std::string_view relative_path) {
  const auto& table = embedded_resource_table();
  auto it = table.find(relative_path);
  return it == table.end() ? nullptr : &it->second;
}

std::vector<std::string> embedded_files_under(std::string_view folder) {
  std::vector<std::string> out;
  std::string prefix = std::string(folder) + "/";
  for (const auto& [path, text] : embedded_resource_table()) {
    std::string_view rest =
        path.substr(0, prefix.size()) == prefix ? path.substr(prefix.size()) : "";
    if (!rest.empty() && rest.find('/') == std::string_view::npos) out.emplace_back(path);
  }
  return out;
}

StatusOr<std::string> read_text_file(const std::string& path, int64_t max_bytes,
                                     const char* max_bytes_why) {
  // stat first, so that opening touches no device; then the same checks on the descriptor
  // read from, in case the path changed in between. O_NONBLOCK: opening a named pipe with no
  // writer would otherwise wait.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return cannot_open(path, errno);
  CF_RETURN_IF_ERROR(check_regular_file(path, st, max_bytes, max_bytes_why));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return cannot_open(path, errno);
  std::string text;
  Status status = ::fstat(fd, &st) == 0 ? check_regular_file(path, st, max_bytes, max_bytes_why)
                                        : cannot_open(path, errno);
  if (status.ok()) {
    // Up to one byte past the bound, so that a file grown since fstat is still refused.
    text.resize(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t filled = 0;
    while (status.ok()) {
      if (filled == text.size()) {
        if (static_cast<int64_t>(filled) > max_bytes) {
          status = Status::InvalidInput(fmt::format("{}: more than the {} bytes allowed ({})", path,
                                                    max_bytes, max_bytes_why));
          break;
        }
        text.resize(
            std::min<std::size_t>(2 * text.size(), static_cast<std::size_t>(max_bytes) + 1));
      }
      const ssize_t got = ::read(fd, text.data() + filled, text.size() - filled);
      if (got == 0) break;
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        status = Status::InvalidInput(
            fmt::format("{}: cannot read file: {}", path, std::strerror(errno)));
        break;
      }
      filled += static_cast<std::size_t>(got);
    }
    text.resize(filled);
  }
  ::close(fd);
  if (!status.ok()) return status;
  return text;
}

StatusOr<Resource> load_named_resource(const std::string& name_or_path, const std::string& folder,
                                       const std::string& what, int64_t max_bytes,
                                       const char* max_bytes_why) {
  std::error_code ec;
  const std::string relative = folder + "/" + name_or_path + ".yaml";
  const std::string_view* embedded = embedded_file(relative);
  const std::filesystem::file_status status = std::filesystem::status(name_or_path, ec);
  // A regular file is read; so is any other thing at the path when no embedded file has the
  // name, for read_text_file's message ("not a regular file (a directory)").
  if (std::filesystem::is_regular_file(status) ||
      (!ec && std::filesystem::exists(status) && embedded == nullptr)) {
    CF_ASSIGN_OR_RETURN(std::string text, read_text_file(name_or_path, max_bytes, max_bytes_why));
    return Resource{std::move(text), name_or_path};
  }
  if (embedded != nullptr) {
    return Resource{std::string(*embedded), "<embedded:" + relative + ">"};
  }
  std::vector<std::string> names;
  for (const auto& path : embedded_files_under(folder)) {
    std::string name = std::filesystem::path(path).stem().string();
    names.push_back(name);
  }
  return Status::InvalidInput(fmt::format("unknown {} \"{}\": not a file, and not one of: {}", what,
                                          name_or_path, fmt::join(names, ", ")));
}

}  // namespace cf
