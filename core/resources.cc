// Named resources: embedded YAMLs with an on-disk override. See resources.h.
#include "core/resources.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace cf {

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

StatusOr<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidInput(fmt::format("{}: cannot open file", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

StatusOr<Resource> load_named_resource(const std::string& name_or_path, const std::string& folder,
                                       const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(name_or_path, ec)) {
    CF_ASSIGN_OR_RETURN(std::string text, read_text_file(name_or_path));
    return Resource{std::move(text), name_or_path};
  }
  const std::string relative = folder + "/" + name_or_path + ".yaml";
  if (const std::string_view* text = embedded_file(relative)) {
    return Resource{std::string(*text), "<embedded:" + relative + ">"};
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
