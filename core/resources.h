// Named resources: model, hardware, dataset and example YAMLs are compiled into the binary
// (so `chunkflow tune` works from any directory) and can be overridden by a path on disk.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/limits.h"
#include "core/status.h"

namespace cf {

// The embedded file at `relative_path` (e.g. "models/qwen2.5-7b.yaml"), or nullptr.
const std::string_view* embedded_file(std::string_view relative_path);
// Relative paths of all embedded files under `folder` (e.g. "models/hardware"), sorted.
std::vector<std::string> embedded_files_under(std::string_view folder);

// A resource's text and where it came from ("<embedded:models/tiny.yaml>" or the path).
struct Resource {
  std::string text;
  std::string origin;
};

// Resolves `name_or_path`: an existing file path is read from disk (read_text_file, at most
// `max_bytes`); otherwise `folder/name_or_path.yaml` among the embedded files. The error lists
// the known names. `what` names the kind of thing for messages ("model", "GPU", "dataset
// distribution"). A path that exists but is no regular file (a directory, a device) and names
// no embedded file is refused as read_text_file refuses it.
StatusOr<Resource> load_named_resource(const std::string& name_or_path, const std::string& folder,
                                       const std::string& what,
                                       int64_t max_bytes = limits::kMaxTextFileBytes,
                                       const char* max_bytes_why = limits::kMaxTextFileBytesWhy);

// The whole of the file at `path`. Checked with stat before a byte is read, and again on the
// open descriptor; each refusal is InvalidInput naming the path:
//   "PATH: cannot open file: <the system's reason>"
//   "PATH: not a regular file (a directory)" — or a character device (/dev/zero, /dev/null),
//     a block device, a named pipe, a socket: none is read, so none can stream forever
//   "PATH: N bytes, more than the MAX allowed (WHY)" — the bounds are in core/limits.h.
// What read_text_file and the profile reader check of a file stat describes as `st` before
// reading it: InvalidInput "PATH: not a regular file (a directory)" (or the other kinds above)
// or "PATH: N bytes, more than the MAX allowed (WHY)"; Ok for a regular file within bounds.
Status check_regular_file(const std::string& path, const struct stat& st, int64_t max_bytes,
                          const char* max_bytes_why);

StatusOr<std::string> read_text_file(const std::string& path,
                                     int64_t max_bytes = limits::kMaxTextFileBytes,
                                     const char* max_bytes_why = limits::kMaxTextFileBytesWhy);

}  // namespace cf
