// Profile reader speed and memory (Google Benchmark): a synthetic Kineto trace
// (tests/traces/profile_generator.h) of --profile_mb MB (default 8, the quick ctest) written to
// a temporary file, then read_profile over it, plain and gzip-compressed. Reports MB/s of JSON
// text and the process's peak RSS (getrusage; the generator streams, so the reader's own peak
// dominates), and nlohmann's own SAX rate on the text in memory, the ceiling of any reader on
// it. --profile_out=PATH keeps the plain file there (docs/BENCHMARKS.md times `chunkflow
// profile` on it). Target: 500 MB in under 10 s and 1 GB.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/check.h"
#include "tests/traces/profile_generator.h"
#include "traces/profile.h"

namespace cf {
namespace {

int64_t g_profile_mb = 8;
std::string g_profile_out;

double peak_rss_mb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

struct GeneratedFile {
  std::string path;
  test::SyntheticProfile stats;
  bool keep = false;
  ~GeneratedFile() {
    if (!keep && !path.empty()) std::filesystem::remove(path);
  }
};

const GeneratedFile& generated(bool gzip) {
  static GeneratedFile files[2];
  GeneratedFile& file = files[gzip ? 1 : 0];
  if (file.path.empty()) {
    file.keep = !gzip && !g_profile_out.empty();
    file.path =
        file.keep
            ? g_profile_out
            : (std::filesystem::temp_directory_path() /
               fmt::format("chunkflow_profile_bench_{}.json{}", ::getpid(), gzip ? ".gz" : ""))
                  .string();
    file.stats = test::write_synthetic_profile(file.path, g_profile_mb * 1'000'000, gzip);
    CF_CHECK_GT(file.stats.bytes, 0) << "cannot write " << file.path;
  }
  return file;
}

void read_benchmark(benchmark::State& state, bool gzip) {
  const GeneratedFile& file = generated(gzip);
  const double rss_before_mb = peak_rss_mb();
  int64_t kernels = 0;
  for (auto _ : state) {
    StatusOr<RankProfile> profile = read_profile(file.path, 0);
    CF_CHECK(profile.ok()) << profile.status().message();
    CF_CHECK_EQ(profile->kernel_count, file.stats.kernels) << "kernels read";
    CF_CHECK_EQ(profile->kernel_ns, file.stats.kernel_ns) << "kernel time read";
    CF_CHECK_EQ(static_cast<int64_t>(profile->steps.size()), file.stats.steps) << "steps read";
    kernels = profile->kernel_count;
  }
  const double mb = static_cast<double>(file.stats.bytes) / 1e6;
  state.counters["MB_per_s"] =
      benchmark::Counter(mb * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["text_MB"] = mb;
  state.counters["events"] = static_cast<double>(file.stats.events);
  state.counters["kernels"] = static_cast<double>(kernels);
  state.counters["rss_before_MB"] = rss_before_mb;
  state.counters["peak_rss_MB"] = peak_rss_mb();
}

// nlohmann's SAX parser over the same text in memory with a handler that does nothing: the
// ceiling of any reader built on it. Last, as it holds the whole file (its RSS is not the
// reader's).
struct NullHandler {
  using json = nlohmann::json;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return true; }
  bool key(std::string&) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const json::exception&) { return false; }
};

void BM_SaxCeiling(benchmark::State& state) {
  const GeneratedFile& file = generated(false);
  std::ifstream in(file.path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (auto _ : state) {
    NullHandler handler;
    CF_CHECK(nlohmann::json::sax_parse(text.data(), text.data() + text.size(), &handler));
  }
  state.counters["MB_per_s"] = benchmark::Counter(
      static_cast<double>(text.size()) / 1e6 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

void BM_ReadProfile(benchmark::State& state) { read_benchmark(state, false); }
void BM_ReadProfileGzip(benchmark::State& state) { read_benchmark(state, true); }
BENCHMARK(BM_ReadProfile)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReadProfileGzip)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SaxCeiling)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cf

// Google Benchmark's main, after taking this program's own flags out of argv.
int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--profile_mb=", 13) == 0) {
      cf::g_profile_mb = std::max<int64_t>(1, std::atoll(argv[i] + 13));
    } else if (std::strncmp(argv[i], "--profile_out=", 14) == 0) {
      cf::g_profile_out = argv[i] + 14;
    } else {
      args.push_back(argv[i]);
    }
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
