// The profile reader's memory stays bounded, end to end: `chunkflow profile` on a generated
// 120 MB Kineto trace (tests/traces/profile_generator.h) finds exactly the steps and kernel
// time written, with a peak RSS (getrusage of the child, from wait4) at most 64 MB — half the
// file — over the program's own (`chunkflow --help`), where a reader that held the document
// would need about ten times the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"
#include "tests/traces/profile_generator.h"

namespace cf {
namespace {

constexpr int64_t kFileBytes = 120'000'000;
constexpr double kPeakRssBoundMb = 64;  // measured: 11 MB (docs/BENCHMARKS.md)

struct Measured {
  int exit_code = -1;
  double peak_rss_mb = 0;
};

// Runs `program args` with stdout into `out_path`; its exit code and peak RSS.
Measured run_measured(const std::string& program, const std::vector<std::string>& args,
                      const std::string& out_path) {
  std::vector<std::string> argv_text = {program};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::dup2(fd, STDOUT_FILENO) < 0) ::_exit(126);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  Measured m;
  int status = 0;
  rusage usage{};
  if (pid < 0 || ::wait4(pid, &status, 0, &usage) != pid) return m;
  m.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  m.peak_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
  return m;
}

TEST(ProfileMemory, PeakRssStaysBoundedOnA120MbTrace) {
  if (test::chunkflow_program() != CHUNKFLOW_BIN) {
    GTEST_SKIP() << "another chunkflow (a sanitizer build) runs: its RSS is not the reader's";
  }
  test::TempDir dir;
  const std::string trace = dir.path() + "/big.json";
  const test::SyntheticProfile written = test::write_synthetic_profile(trace, kFileBytes);
  ASSERT_GE(written.bytes, kFileBytes);
  const std::string report_path = dir.path() + "/report.json";
  const Measured m =
      run_measured(test::chunkflow_program(), {"profile", trace, "--json"}, report_path);
  ASSERT_EQ(m.exit_code, 0);

  std::FILE* f = std::fopen(report_path.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  const nlohmann::json report = nlohmann::json::parse(f);
  std::fclose(f);
  const nlohmann::json& rank = report["ranks"][0];
  EXPECT_EQ(static_cast<int64_t>(rank["steps"].size()), written.steps);
  EXPECT_EQ(rank["gpu_kernel_count"].get<int64_t>(), written.kernels);
  EXPECT_DOUBLE_EQ(rank["gpu_kernel_s"].get<double>(),
                   static_cast<double>(written.kernel_ns) / 1e9);
  EXPECT_EQ(rank["events"].get<int64_t>(), written.events);

  // What the reader adds to the program's own footprint: a build with the CUDA backend maps
  // cuBLAS and NCCL, about 200 MB of RSS before any work (`chunkflow --help`).
  const Measured idle = run_measured(test::chunkflow_program(), {"--help"}, dir.path() + "/help");
  ASSERT_EQ(idle.exit_code, 0);
  EXPECT_LT(m.peak_rss_mb - idle.peak_rss_mb, kPeakRssBoundMb)
      << "peak RSS " << m.peak_rss_mb << " MB on a " << written.bytes / 1e6 << " MB trace, "
      << idle.peak_rss_mb << " MB for --help";
  RecordProperty("peak_rss_mb", std::to_string(m.peak_rss_mb));
  RecordProperty("idle_rss_mb", std::to_string(idle.peak_rss_mb));
}

}  // namespace
}  // namespace cf
