// Runs the chunkflow binary in a subprocess and captures exit code, stdout and stderr.
#pragma once

#include <string>
#include <vector>

namespace cf::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs CHUNKFLOW_BIN with `args` (no shell); stdout and stderr captured separately.
CommandResult run_chunkflow(const std::vector<std::string>& args);

// A fresh directory under the system temp dir, removed by the caller's TempDir.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  // Writes `text` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

}  // namespace cf::test
