// The executor on the GPU (CUDA backend): the gradient contract in fp32 mode over ChunkSize,
// K, pp, packers, DP, CP and interleaving (the CPU contract's bound, 1e-5); CPU and GPU losses
// over 5 training steps (fp32: equal to 1e-5 relative; bf16 tensor cores: within 2%); the
// same per-op memory records as the counting (hence the CPU) backend; and the device's peak as the
// executor counts it against the allocator pool's and the driver's (within 2%). Skips with the
// reason when no CUDA device is present. K/V offload: the contract with the store in pinned
// host memory, the same step as on the device, and the copy queue's guard of freed storage.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "executor/counting_backend.h"
#include "executor/cuda_backend.h"
#include "executor/executor.h"
#include "kernels/cuda/cuda_check.h"
#include "sim/plan/plan_builder.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

constexpr double kMaxRelError = 1e-5;  // the CPU contract's bound (contract_test.cc)

class CudaExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string reason = cuda::no_device_reason(); !reason.empty()) {
      GTEST_SKIP() << reason;
    }
  }
};

ExecutorOptions cuda_options(uint64_t seed, const std::string& math = "fp32") {
  ExecutorOptions options;
  options.seed = seed;
  options.init_std = 0.2f;  // attention far from uniform, as in the CPU contract
  options.record_trace = false;
  options.backend = "cuda";
  options.math = math;
  return options;
}

struct Case {
  std::string name;
  test::TinyJob job;
  uint64_t seed;
};

std::vector<Case> contract_cases() {
  std::vector<Case> cases;
  uint64_t seed = 300;
  for (int pp : {1, 2}) {
    for (int64_t chunk_size : {30, 48}) {
      for (const char* k : {"1", "2", "64"}) {
        for (const char* packer : {"balanced", "ffd"}) {
          test::TinyJob job;
          job.lengths = test::odd_lengths(
              test::scaled_batch(pp == 1 ? "longbench" : "lmsys-chat-1m", 9, 161, seed));
          job.pp = pp;
          job.strategy = fmt::format("{{kind: chunkflow, chunk_size: {}, k: {}, packer: {}}}",
                                     chunk_size, k, packer);
          cases.push_back({fmt::format("pp{}_c{}_k{}_{}", pp, chunk_size, k, packer), job, seed++});
        }
      }
    }
  }
  test::TinyJob dp2;
  dp2.lengths = test::odd_lengths(test::scaled_batch("longbench", 10, 151, 5));
  dp2.dp = 2;
  dp2.strategy = "{kind: chunkflow, chunk_size: 40, k: 1}";
  cases.push_back({"dp2_c40_k1", dp2, 5});
  test::TinyJob cp2 = dp2;
  cp2.dp = 1;
  cp2.cp = 2;
  cp2.pp = 2;
  cases.push_back({"cp2_pp2_c40_k1", cp2, 6});
  test::TinyJob interleaved = dp2;
  interleaved.dp = 1;
  interleaved.pp = 2;
  interleaved.vpp = 2;
  interleaved.schedule = "interleaved";
  interleaved.strategy = "{kind: chunkflow, chunk_size: 32, k: 2}";
  cases.push_back({"pp2_vpp2_interleaved_c32_k2", interleaved, 7});
  test::TinyJob baseline = dp2;
  baseline.dp = 1;
  baseline.pp = 2;
  baseline.max_length = 160;
  baseline.strategy = "{kind: baseline, micro_batching: pack}";
  cases.push_back({"pp2_baseline_pack", baseline, 8});
  // K/V offload: the store in pinned host memory, rows fetched on the copy queue.
  for (int pp : {1, 2}) {
    test::TinyJob offload;
    offload.lengths = test::odd_lengths(test::scaled_batch("chatqa2-long-sft", 7, 190, 20 + pp));
    offload.pp = pp;
    offload.strategy = fmt::format("{{kind: chunkflow, chunk_size: {}, k: {}, kv_offload: all}}",
                                   pp == 1 ? 29 : 41, pp);
    cases.push_back({fmt::format("offload_pp{}_k{}", pp, pp), offload, uint64_t(20 + pp)});
  }
  test::TinyJob offload_cp = cp2;
  offload_cp.strategy = "{kind: chunkflow, chunk_size: 40, k: 1, kv_offload: all}";
  cases.push_back({"offload_cp2_pp2_c40_k1", offload_cp, 23});
  test::TinyJob tied;
  tied.model = "tests/executor/data/tiny-tied.yaml";
  tied.lengths = {97, 5, 33, 1, 13};
  tied.pp = 2;
  tied.strategy = "{kind: chunkflow, chunk_size: 30, k: 1}";
  cases.push_back({"tied_pp2_c30_k1", tied, 9});
  return cases;
}

// Names the case in test listings (gtest would print the struct's bytes).
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class CudaContractTest : public CudaExecutorTest, public ::testing::WithParamInterface<Case> {};

TEST_P(CudaContractTest, Fp32GradientsEqualWholeSequenceTraining) {
  const Job job = test::tiny_job(GetParam().job);
  ExecutorOptions options = cuda_options(GetParam().seed);
  options.check_reference = true;
  StatusOr<RunReport> report = run_in_process(job, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->steps.size(), 1u);
  ASSERT_TRUE(report->steps[0].check.has_value());
  EXPECT_LE(report->steps[0].check->rel_error, kMaxRelError)
      << "worst tensor " << report->steps[0].check->worst_tensor;
  EXPECT_EQ(report->backend.rfind("cuda (", 0), 0u) << report->backend;
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaContractTest, ::testing::ValuesIn(contract_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

// Five AdamW steps of the same job and tokens on the CPU and the GPU: the same losses step by
// step (fp32: to 1e-5 relative, the optimizer amplifying nothing at lr 1e-3 over five steps;
// bf16 operands: within 2%, the size of bf16 rounding in a loss near ln 256).
TEST_F(CudaExecutorTest, CpuAndGpuLossesAgreeOverFiveSteps) {
  test::TinyJob spec;
  spec.lengths = test::odd_lengths(test::scaled_batch("chatqa2-long-sft", 8, 191, 41));
  spec.pp = 2;
  spec.steps = 5;
  spec.strategy = "{kind: chunkflow, chunk_size: 48, k: 2}";
  const Job job = test::tiny_job(spec);
  ExecutorOptions cpu = cuda_options(41);
  cpu.backend = "cpu";
  StatusOr<RunReport> on_cpu = run_in_process(job, cpu);
  ASSERT_TRUE(on_cpu.ok()) << on_cpu.status().message();
  for (const char* math : {"fp32", "bf16"}) {
    SCOPED_TRACE(math);
    StatusOr<RunReport> on_gpu = run_in_process(job, cuda_options(41, math));
    ASSERT_TRUE(on_gpu.ok()) << on_gpu.status().message();
    ASSERT_EQ(on_gpu->steps.size(), 5u);
    const double tol = std::string(math) == "fp32" ? 1e-5 : 2e-2;
    for (size_t s = 0; s < 5; ++s) {
      const double a = on_cpu->steps[s].loss, b = on_gpu->steps[s].loss;
      EXPECT_LE(std::abs(a - b), tol * std::abs(a))
          << "step " << s << ": cpu " << a << ", gpu " << b;
    }
  }
}

// The executor's code is the same on every backend, so its per-op memory records are too; and
// on the device its count is what the pool and the driver see: qwen2.5-0.5b (fp32 weights,
// gradients and AdamW states, 7.9 GB) so that 2% is well above the pool's granularity.
TEST_F(CudaExecutorTest, DeviceMemoryMatchesThePoolAndTheDriver) {
  test::TinyJob spec;
  spec.model = "qwen2.5-0.5b";
  spec.lengths = {2049, 511, 301};
  spec.strategy = "{kind: chunkflow, chunk_size: 1024, k: 1}";
  const Job job = test::tiny_job(spec);
  ExecutorOptions options = cuda_options(3, "bf16");
  StatusOr<RunReport> on_gpu = run_in_process(job, options);
  ASSERT_TRUE(on_gpu.ok()) << on_gpu.status().message();
  ASSERT_TRUE(on_gpu->device_memory.has_value());
  const DeviceMemoryReport& m = *on_gpu->device_memory;
  ASSERT_EQ(on_gpu->stages.size(), 1u);
  EXPECT_EQ(m.executor_peak, on_gpu->stages[0].peak_bytes) << "one stage: its peak is the device's";
  // The pool also holds the launches' index arrays and segment tables (12 B and 32 B per token).
  EXPECT_GE(m.pool_used_peak, m.executor_peak);
  EXPECT_LE(m.pool_used_peak, m.executor_peak * 1.02);
  EXPECT_GE(m.driver_delta(), m.executor_peak * 0.98);
  EXPECT_LE(m.driver_delta(), m.executor_peak * 1.02);
  RecordProperty("executor_peak_bytes", std::to_string(m.executor_peak));
  RecordProperty("pool_used_peak_bytes", std::to_string(m.pool_used_peak));
  RecordProperty("driver_delta_bytes", std::to_string(m.driver_delta()));

  // The counting backend replays the same code without storage (a CPU run of this model
  // would take minutes): its records are the CPU backend's (backend_test.cc).
  StatusOr<Plan> plan = build_plan(job, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(on_gpu->op_memory.size(), 1u);
  EXPECT_EQ(count_op_memory(job.model, *plan, 0, 0), on_gpu->op_memory[0]);
}

// K/V offload on the device: the same step as with the store on the device (fp32: losses and
// the reference check to 1e-6 relative — the same kernels on the same operands), no state store
// in device memory, the pinned host pool at the peak the store had on the device, every byte it
// held gone out and come back, the copy queue's time measured; and the host pools' bookkeeping
// is the CPU backend's to the byte (the same store code).
TEST_F(CudaExecutorTest, OffloadRunsTheSameStepWithTheStoreInPinnedHostMemory) {
  const test::OffloadPair pair = test::offload_pair();
  const Job& on_device = pair.kept;
  const Job& offloaded = pair.offloaded;
  ExecutorOptions options = cuda_options(9);
  options.check_reference = true;
  StatusOr<RunReport> kept = run_in_process(on_device, options);
  StatusOr<RunReport> moved = run_in_process(offloaded, options);
  ASSERT_TRUE(kept.ok() && moved.ok());
  EXPECT_NEAR(moved->steps[0].loss, kept->steps[0].loss, 1e-6 * std::abs(kept->steps[0].loss));
  ASSERT_TRUE(kept->steps[0].check && moved->steps[0].check);
  EXPECT_LE(moved->steps[0].check->rel_error, kMaxRelError);
  ExecutorOptions cpu = options;
  cpu.backend = "cpu";
  StatusOr<RunReport> on_cpu = run_in_process(offloaded, cpu);
  ASSERT_TRUE(on_cpu.ok());
  for (size_t s = 0; s < moved->stages.size(); ++s) {
    SCOPED_TRACE(::testing::Message() << "stage " << s);
    EXPECT_EQ(moved->stages[s].category_peaks.state_store, 0);
    EXPECT_EQ(moved->stages[s].host_peak_bytes, kept->stages[s].category_peaks.state_store);
    EXPECT_LE(moved->stages[s].peak_bytes, kept->stages[s].peak_bytes);
    EXPECT_GE(moved->stages[s].host_copy_bytes, 2 * moved->stages[s].host_peak_bytes);
    EXPECT_GT(moved->stages[s].host_copy_s, 0.0);
    EXPECT_EQ(moved->stages[s].host_peak_bytes, on_cpu->stages[s].host_peak_bytes);
    EXPECT_EQ(moved->stages[s].host_copy_bytes, on_cpu->stages[s].host_copy_bytes);
    EXPECT_EQ(moved->stages[s].peak_bytes, on_cpu->stages[s].peak_bytes);
  }
}

// The copy queue against the stream's allocator: storage an offload still reads, freed at once
// and its memory asked for again and overwritten, reaches the host as it was; a fetch into a
// buffer dropped before anyone waits is harmless; a fetch waited for is there. 256 MiB, so the
// copies outlast the stream's next calls by far.
TEST_F(CudaExecutorTest, CopyQueueGuardsStorageUntilItsCopyIsDone) {
  StatusOr<std::unique_ptr<CudaBackend>> backend = CudaBackend::open(0, cuda::Math::kFp32);
  ASSERT_TRUE(backend.ok()) << backend.status().message();
  std::unique_ptr<Stream> stream = (*backend)->create_stream();
  MemoryTracker device, host;
  const int64_t n = int64_t{64} << 20;
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = float(i % 1000003) * 0.25f;
  FloatBuffer pooled(stream->host_pool(), &host, MemoryCategory::kStateStore, n);
  {
    FloatBuffer src(stream->allocator(), &device, MemoryCategory::kTransient, n);
    stream->copy_from_host(src.data(), values.data(), n);
    stream->offload(pooled.data(), src.data(), n);
  }  // freed while the copy reads it
  for (int round = 0; round < 3; ++round) {
    FloatBuffer reused(stream->allocator(), &device, MemoryCategory::kTransient, n);
    stream->fill(reused.data(), -7.0f, n);
  }
  {
    FloatBuffer dropped(stream->allocator(), &device, MemoryCategory::kTransient, n);
    stream->fetch(dropped.data(), pooled.data(), n);
  }  // freed before any wait
  FloatBuffer back(stream->allocator(), &device, MemoryCategory::kTransient, n);
  stream->fetch(back.data(), pooled.data(), n);
  stream->wait_copies();
  std::vector<float> got(static_cast<size_t>(n));
  stream->copy_to_host(got.data(), back.data(), n);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) wrong += got[static_cast<size_t>(i)] != values[size_t(i)];
  EXPECT_EQ(wrong, 0);
  const double seconds = stream->take_copy_seconds();
  EXPECT_GT(seconds, 0.0);
  RecordProperty("copy_gb_per_s", std::to_string(3.0 * double(n) * 4 / seconds / 1e9));
  EXPECT_EQ(stream->take_copy_seconds(), 0.0);
}

// A job larger than the device is refused before anything is allocated, naming both sizes.
TEST_F(CudaExecutorTest, AJobLargerThanTheDeviceIsRefusedBeforeAllocating) {
  test::TinyJob spec;
  spec.lengths = {37};
  const Job job = test::tiny_job(spec);
  ExecutorOptions options = cuda_options(1);
  options.device_bytes_needed = int64_t{1} << 50;  // 1 PiB
  StatusOr<RunReport> report = run_in_process(job, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().exit_code(), 2);
  EXPECT_NE(report.status().message().find("nothing was allocated"), std::string::npos)
      << report.status().message();
}

}  // namespace
}  // namespace cf
