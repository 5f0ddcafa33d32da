// Runs a program (the chunkflow binary, or mpirun with it) in a subprocess and captures its
// exit code, stdout and stderr (stderr also as a terminal would show it); and temporary
// directories for the files a test writes.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

namespace cf::test {

struct CommandResult {
  int exit_code = -1;  // 128 + N when killed by signal N
  std::string out;
  std::string err;
  double wall_s = 0;       // from spawn to exit (run_program_until)
  bool timed_out = false;  // still running at the deadline, so terminated (run_program_until)
};

// Runs `program` with `args` (no shell); stdout and stderr captured separately.
CommandResult run_program(const std::string& program, const std::vector<std::string>& args);

// As run_program, but a program still running after `deadline_s` gets SIGTERM (mpirun passes it
// on to its ranks), SIGKILL 5 s later, and is reported timed_out: a hang fails a test instead
// of stalling it.
CommandResult run_program_until(const std::string& program, const std::vector<std::string>& args,
                                double deadline_s);

// As run_program, with stderr on the slave side of a new pseudo-terminal (isatty(2) is true in
// the child) and read back from its master: what a user at a terminal sees on stderr (the
// terminal turns "\n" into "\r\n"). stdout is captured as above.
CommandResult run_program_on_terminal(const std::string& program,
                                      const std::vector<std::string>& args);

// True when CHUNKFLOW_TEST_PROGRAM names another chunkflow than the test's own build (which may
// be built with other options: the sanitizer build has no CUDA backend).
inline bool test_program_replaced() {
  const char* other = std::getenv("CHUNKFLOW_TEST_PROGRAM");
  return other != nullptr && *other != '\0';
}

#ifdef CHUNKFLOW_BIN
// The program a test target names (CMake: CHUNKFLOW_BIN="<path>"): chunkflow, or mpirun. A
// non-empty CHUNKFLOW_TEST_PROGRAM in the environment names another chunkflow to run instead:
// scripts/test.sh runs the end-to-end tests against the sanitizer build's program that way.
inline std::string chunkflow_program() {
  return test_program_replaced() ? std::getenv("CHUNKFLOW_TEST_PROGRAM") : CHUNKFLOW_BIN;
}
inline CommandResult run_chunkflow(const std::vector<std::string>& args) {
  return run_program(chunkflow_program(), args);
}
inline CommandResult run_chunkflow_on_terminal(const std::vector<std::string>& args) {
  return run_program_on_terminal(chunkflow_program(), args);
}

// Whether this test binary is built with a sanitizer (ASan maps terabytes of shadow memory).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

// chunkflow ARGS under a 4 GiB address-space limit (prlimit) and a wall-clock limit of
// `seconds` (killed: exit 137). A sanitized chunkflow (this test built with a sanitizer, or
// CHUNKFLOW_TEST_PROGRAM naming the sanitizer build's) runs without the address-space limit
// and with 6× the time.
inline CommandResult run_chunkflow_limited(const std::vector<std::string>& args, int seconds) {
  const std::string program = chunkflow_program();
  const bool sanitized = kSanitizedBuild || program != CHUNKFLOW_BIN;
  std::vector<std::string> argv;
  if (!sanitized) argv = {"--as=4294967296", "--"};
  argv.insert(argv.end(), {"/usr/bin/timeout", "-s", "KILL",
                           std::to_string(sanitized ? 6 * seconds : seconds), program});
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(sanitized ? "/usr/bin/env" : "/usr/bin/prlimit", argv);
}
#endif

// The first Python interpreter that runs `import MODULES` ("torch", "torch, yaml"): Debian's,
// then the one on PATH; "" when none does (the test then skips, saying what to install).
inline std::string python_with(const std::string& modules) {
  for (const char* candidate : {"/usr/bin/python3", "python3"}) {
    const CommandResult r =
        run_program_until("/usr/bin/env", {candidate, "-c", "import " + modules}, 120);
    if (r.exit_code == 0) return candidate;
  }
  return "";
}

// The whole file at `path` ("" when it cannot be read).
std::string read_text(const std::string& path);

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
