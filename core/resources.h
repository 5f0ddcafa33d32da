// Named resources: model, hardware, dataset and example YAMLs are compiled into the binary
// (so `chunkflow tune` works from any directory) and can be overridden by a path on disk.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

// Resolves `name_or_path`: an existing file path is read from disk; otherwise
// `folder/name_or_path.yaml` among the embedded files. The error lists the known names.
// `what` names the kind of thing for messages ("model", "GPU", "dataset distribution").
StatusOr<Resource> load_named_resource(const std::string& name_or_path, const std::string& folder,
                                       const std::string& what);

StatusOr<std::string> read_text_file(const std::string& path);

}  // namespace cf
