// Subprocess runner for the end-to-end tests (posix_spawn, output drained to files so that a
// full pipe never blocks the child; a pseudo-terminal, read as the child writes, for stderr as
// a terminal).
#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <pty.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

extern char** environ;

namespace cf::test {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "chunkflow-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  std::string full = path_ + "/" + name;
  std::ofstream(full, std::ios::binary) << text;
  return full;
}

namespace {

// Spawns `program` with stdout to `out_path` and stderr to `err_path`, or (err_path empty) to
// the file descriptor `err_fd`, which the child alone keeps. Returns the pid, or -1.
pid_t spawn(const std::string& program, const std::vector<std::string>& args,
            const std::string& out_path, const std::string& err_path, int err_fd) {
  std::vector<std::string> argv_strings = {program};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  if (err_path.empty()) {
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    posix_spawn_file_actions_addclose(&actions, err_fd);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return spawned == 0 ? pid : -1;
}

int exit_code_of(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return exit_code_of(status);
}

// Waits for `pid` until `deadline`, polling every 10 ms; nullopt if it is still running.
std::optional<int> wait_exit_code_until(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return exit_code_of(status);
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

CommandResult run_program(const std::string& program, const std::vector<std::string>& args) {
  TempDir dir;
  const std::string out_path = dir.path() + "/stdout", err_path = dir.path() + "/stderr";
  CommandResult result;
  const pid_t pid = spawn(program, args, out_path, err_path, -1);
  if (pid < 0) return result;
  result.exit_code = wait_exit_code(pid);
  result.out = read_text(out_path);
  result.err = read_text(err_path);
  return result;
}

CommandResult run_program_until(const std::string& program, const std::vector<std::string>& args,
                                double deadline_s) {
  using Clock = std::chrono::steady_clock;
  TempDir dir;
  const std::string out_path = dir.path() + "/stdout", err_path = dir.path() + "/stderr";
  CommandResult result;
  const Clock::time_point start = Clock::now();
  const pid_t pid = spawn(program, args, out_path, err_path, -1);
  if (pid < 0) return result;
  std::optional<int> code =
      wait_exit_code_until(pid, start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(deadline_s)));
  result.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (!code) {
    result.timed_out = true;
    kill(pid, SIGTERM);
    code = wait_exit_code_until(pid, Clock::now() + std::chrono::seconds(5));
    if (!code) {
      kill(pid, SIGKILL);
      code = wait_exit_code(pid);
    }
  }
  result.exit_code = *code;
  result.out = read_text(out_path);
  result.err = read_text(err_path);
  return result;
}

CommandResult run_program_on_terminal(const std::string& program,
                                      const std::vector<std::string>& args) {
  TempDir dir;
  const std::string out_path = dir.path() + "/stdout";
  CommandResult result;
  int master = -1, slave = -1;
  if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return result;
  const pid_t pid = spawn(program, args, out_path, "", slave);
  close(slave);  // the child holds the only other end: reads end (EIO) when it exits
  if (pid >= 0) {
    char buffer[4096];
    for (ssize_t n; (n = read(master, buffer, sizeof buffer)) > 0;) result.err.append(buffer, n);
    result.exit_code = wait_exit_code(pid);
    result.out = read_text(out_path);
  }
  close(master);
  return result;
}

}  // namespace cf::test
