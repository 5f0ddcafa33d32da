// A synthetic Kineto trace of any size, for the profile reader's benchmark
// (tests/bench/profile_bench.cc) and its bounded-memory test: training steps of a
// transformer-like pattern, each layer a CPU op, its launch, the ac2g flow pair, a kernel with
// Kineto's usual args, a Python function and a memory event. Written as a stream of 1 MiB
// blocks (plain, or gzip at level 1), so the writer's own memory stays flat. The totals it
// returns are what a correct reader must find.
#pragma once

#include <fmt/format.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>

namespace cf::test {

struct SyntheticProfile {
  int64_t bytes = 0;  // of text, before compression
  int64_t events = 0;
  int64_t steps = 0;
  int64_t kernels = 0;
  int64_t kernel_ns = 0;  // sum of kernel durations
  int64_t cpu_ops = 0;
};

namespace profile_generator_detail {

// The kernels a layer cycles through: one of each class the reader knows.
inline constexpr const char* kKernelNames[] = {
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_"
    "segment_k_off_kernel__5x_cublas",
    "void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
    "cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, false, "
    "true, false, false, true, true, false, false>(Flash_fwd_params)",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
    "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, "
    "at::detail::Array<char*, 3>)",
    "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
};
inline constexpr const char* kOpNames[] = {
    "aten::linear", "aten::_scaled_dot_product_flash_attention", "aten::add", "record_param_comms"};

class Sink {
 public:
  Sink(const std::string& path, bool gzip) : gzip_(gzip) {
    if (gzip_) {
      gz_ = gzopen(path.c_str(), "wb1");
    } else {
      file_ = std::fopen(path.c_str(), "wb");
    }
  }
  ~Sink() {
    flush();
    if (gz_ != nullptr) gzclose(gz_);
    if (file_ != nullptr) std::fclose(file_);
  }
  bool ok() const { return gz_ != nullptr || file_ != nullptr; }
  std::string& buffer() { return buffer_; }
  void maybe_flush() {
    if (buffer_.size() >= (1u << 20)) flush();
  }
  int64_t written() const { return written_ + static_cast<int64_t>(buffer_.size()); }

 private:
  void flush() {
    if (buffer_.empty()) return;
    if (gz_ != nullptr) gzwrite(gz_, buffer_.data(), static_cast<unsigned>(buffer_.size()));
    if (file_ != nullptr) std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
    written_ += static_cast<int64_t>(buffer_.size());
    buffer_.clear();
  }
  bool gzip_;
  gzFile gz_ = nullptr;
  std::FILE* file_ = nullptr;
  std::string buffer_;
  int64_t written_ = 0;
};

// µs with three decimals from integer ns, as Kineto writes times.
inline std::string us(int64_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); }

}  // namespace profile_generator_detail

// Writes whole steps until the text holds at least `target_bytes`. Returns the totals, with
// bytes = 0 when the file could not be written.
inline SyntheticProfile write_synthetic_profile(const std::string& path, int64_t target_bytes,
                                                bool gzip = false) {
  using namespace profile_generator_detail;
  constexpr int kLayers = 64;
  constexpr int64_t kStepNs = 10'000'000;  // 10 ms per step
  SyntheticProfile stats;
  Sink sink(path, gzip);
  if (!sink.ok()) return stats;
  auto out = std::back_inserter(sink.buffer());
  fmt::format_to(out,
                 "{{\n  \"schemaVersion\": 1,\n  \"deviceProperties\": [{{\"id\": 0, \"name\": "
                 "\"NVIDIA H100 80GB HBM3\", \"totalGlobalMem\": 85029158912, \"computeMajor\": "
                 "9, \"computeMinor\": 0, \"numSms\": 132}}],\n  \"distributedInfo\": "
                 "{{\"backend\": \"nccl\", \"rank\": 0, \"world_size\": 8}},\n"
                 "  \"displayTimeUnit\": \"ms\",\n  \"traceEvents\": [");
  int64_t correlation = 1;
  const char* separator = "\n";
  while (sink.written() < target_bytes) {
    const int64_t step_start = 1'000'000 + stats.steps * kStepNs;
    fmt::format_to(out,
                   "{}  {{\n    \"ph\": \"X\", \"cat\": \"user_annotation\", \"name\": "
                   "\"ProfilerStep#{}\", \"pid\": 1234, \"tid\": 1234,\n    \"ts\": {}, \"dur\": "
                   "{},\n    \"args\": {{\n      \"External id\": {}\n    }}\n  }}",
                   separator, stats.steps, us(step_start), us(kStepNs - 1000), correlation);
    separator = ",\n";
    stats.events += 1;
    for (int layer = 0; layer < kLayers; ++layer) {
      const int kind = layer % 4;
      const int64_t cpu_ns = step_start + 1000 + layer * 60'000;
      const int64_t gpu_ns = cpu_ns + 20'000;
      const int64_t kernel_ns = 1000 * (layer % 7 + 5) + 125;  // 5.125 .. 11.125 µs
      fmt::format_to(
          out,
          ",\n  {{\n    \"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"{}\", \"pid\": 1234, "
          "\"tid\": 1234,\n    \"ts\": {}, \"dur\": 12.500,\n    \"args\": {{\n      \"External "
          "id\": {}, \"Record function id\": 0, \"Sequence number\": {}, \"Fwd thread id\": 0,\n"
          "      \"Input Dims\": [[8, 4096, 4096], [4096, 4096], [4096]],\n      \"Input type\": "
          "[\"c10::BFloat16\", \"c10::BFloat16\", \"c10::BFloat16\"],\n      \"Ev Idx\": {}\n    "
          "}}\n  }}",
          kOpNames[kind], us(cpu_ns), correlation, correlation, correlation);
      fmt::format_to(
          out,
          ",\n  {{\n    \"ph\": \"X\", \"cat\": \"cuda_runtime\", \"name\": \"cudaLaunchKernel\", "
          "\"pid\": 1234, \"tid\": 1234,\n    \"ts\": {}, \"dur\": 4.250,\n    \"args\": {{\n"
          "      \"External id\": {}, \"cbid\": 211, \"correlation\": {}\n    }}\n  }}",
          us(cpu_ns + 2000), correlation, correlation);
      fmt::format_to(out,
                     ",\n  {{\n    \"ph\": \"s\", \"id\": {}, \"pid\": 1234, \"tid\": 1234, "
                     "\"ts\": {},\n    \"cat\": \"ac2g\", \"name\": \"ac2g\"\n  }}",
                     correlation, us(cpu_ns + 2000));
      fmt::format_to(
          out,
          ",\n  {{\n    \"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"{}\", \"pid\": 0, "
          "\"tid\": {},\n    \"ts\": {}, \"dur\": {},\n    \"args\": {{\n      \"External id\": "
          "{},\n      \"queued\": 0, \"device\": 0, \"context\": 1,\n      \"stream\": {}, "
          "\"correlation\": {},\n      \"registers per thread\": 168,\n      \"shared memory\": "
          "213248,\n      \"blocks per SM\": 0.969697,\n      \"warps per SM\": 3.878788,\n"
          "      \"grid\": [8, 16, 1],\n      \"block\": [384, 1, 1],\n      \"est. achieved "
          "occupancy %\": 6\n    }}\n  }}",
          kKernelNames[kind], kind == 3 ? 13 : 7, us(gpu_ns), us(kernel_ns), correlation,
          kind == 3 ? 13 : 7, correlation);
      fmt::format_to(out,
                     ",\n  {{\n    \"ph\": \"f\", \"id\": {}, \"pid\": 0, \"tid\": {}, \"ts\": "
                     "{},\n    \"cat\": \"ac2g\", \"name\": \"ac2g\", \"bp\": \"e\"\n  }}",
                     correlation, kind == 3 ? 13 : 7, us(gpu_ns));
      fmt::format_to(out,
                     ",\n  {{\n    \"ph\": \"X\", \"cat\": \"python_function\", \"name\": "
                     "\"torch/nn/modules/linear.py(125): forward\", \"pid\": 1234, \"tid\": 1234,"
                     "\n    \"ts\": {}, \"dur\": 30.000,\n    \"args\": {{\n      \"Python parent "
                     "id\": {}, \"Python id\": {}, \"Ev Idx\": {}\n    }}\n  }}",
                     us(cpu_ns - 500), correlation, correlation + 1, correlation);
      fmt::format_to(out,
                     ",\n  {{\n    \"ph\": \"i\", \"cat\": \"cpu_instant_event\", \"s\": \"t\", "
                     "\"name\": \"[memory]\",\n    \"pid\": 1234, \"tid\": 1234,\n    \"ts\": {},\n"
                     "    \"args\": {{\n      \"Total Reserved\": 2147483648, \"Total Allocated\": "
                     "{}, \"Bytes\": 1048576, \"Addr\": 139872384712704, \"Device Type\": 1, "
                     "\"Device Id\": 0\n    }}\n  }}",
                     us(cpu_ns + 1000), int64_t{1} << 30 | (layer << 20));
      stats.events += 7;
      stats.kernels += 1;
      stats.kernel_ns += kernel_ns;
      stats.cpu_ops += 1;
      ++correlation;
    }
    ++stats.steps;
    sink.maybe_flush();
  }
  fmt::format_to(out, "\n  ],\n  \"traceName\": \"synthetic\"\n}}\n");
  stats.bytes = sink.written();
  return stats;
}

}  // namespace cf::test
