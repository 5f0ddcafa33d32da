// The PyTorch-profile reader (traces/profile.h) on the hand-made fixtures of
// tests/traces/data, every number worked out by hand in the comments; the .gz form read equal
// to the plain one; time parsing exact to the nanosecond; and every kind of bad profile refused
// with the file and the byte (or event) in the message, never a crash.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/subprocess.h"
#include "traces/profile.h"

namespace cf {
namespace {

using test::TempDir;

const std::string kKineto = "tests/traces/data/kineto_gpu_rank1.json";
const std::string kKinetoGz = "tests/traces/data/kineto_gpu_rank1.json.gz";
const std::string kLegacy = "tests/traces/data/torch1_cpu_list.json";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int64_t by_class(const std::array<int64_t, kKernelClassCount>& ns, KernelClass kind) {
  return ns[static_cast<int>(kind)];
}

RankProfile read_ok(const std::string& path, int file_index = 0) {
  StatusOr<RankProfile> profile = read_profile(path, file_index);
  EXPECT_TRUE(profile.ok()) << profile.status().message();
  return profile.ok() ? *profile : RankProfile{};
}

// Times below in ns; the fixture writes µs with three decimals.
TEST(ProfileReader, KinetoFixtureSteps) {
  const RankProfile r = read_ok(kKineto, 5);
  EXPECT_EQ(r.format, ProfileFormat::kKineto);
  EXPECT_EQ(r.rank, 1);  // distributedInfo, not the file index 5
  EXPECT_TRUE(r.rank_from_trace);
  EXPECT_EQ(r.world_size, 2);
  EXPECT_EQ(r.backend, "nccl");
  ASSERT_EQ(r.steps.size(), 2u);

  // Step 1 [1000, 2000) µs. Device 0's work inside it: memcpy [1050, 1080), memset
  // [1080.25, 1080.75), GEMM [1100, 1300), flash [1300, 1450), NCCL all-reduce [1400, 1600) on
  // stream 13, fill [1450, 1460), and the first 50 µs of the GEMM [1950, 2100).
  // Union: 30 + 0.5 + [1100, 1600) 500 + 50 = 580.5 µs.
  const ProfileStep& s1 = r.steps[0];
  EXPECT_EQ(s1.name, "ProfilerStep#1");
  EXPECT_EQ(s1.start_ns, 1'000'000);
  EXPECT_EQ(s1.duration_ns, 1'000'000);
  EXPECT_EQ(s1.gpu_busy_ns, 580'500);
  EXPECT_EQ(s1.gpu_idle_ns(), 419'500);
  // Stream 7: 30 + 0.5 + 200 + 150 + 10 + 50 = 440.5; stream 13: 200.
  EXPECT_EQ(s1.streams, (std::vector<ProfileStreamBusy>{{0, 7, 440'500}, {0, 13, 200'000}}));
  EXPECT_EQ(s1.devices, (std::vector<ProfileStreamBusy>{{0, -1, 580'500}}));

  // Step 2 [2000, 3200.5) µs: GEMM's last 100 µs, reduce [2100, 2150.125), sort
  // [2150.125, 2160.125) — one span of 160.125 —, all-gather [2200, 2300) and send-recv
  // [2300, 2310) — 110 —, and the first 100.5 µs of reduce-scatter [3100, 3300).
  const ProfileStep& s2 = r.steps[1];
  EXPECT_EQ(s2.name, "ProfilerStep#2");
  EXPECT_EQ(s2.start_ns, 2'000'000);
  EXPECT_EQ(s2.duration_ns, 1'200'500);
  EXPECT_EQ(s2.gpu_busy_ns, 160'125 + 110'000 + 100'500);
  EXPECT_EQ(s2.gpu_idle_ns(), 1'200'500 - 370'625);
  EXPECT_EQ(s2.streams, (std::vector<ProfileStreamBusy>{{0, 7, 160'125}, {0, 13, 210'500}}));
}

TEST(ProfileReader, KinetoFixtureClasses) {
  const RankProfile r = read_ok(kKineto);
  // Kernels: GEMM 200 + 150, flash 150, all-reduce 200, all-gather 100, reduce-scatter 200,
  // send-recv 10, fill 10, reduce 50.125, sort 10 = 1080.125 µs in 10 kernels.
  EXPECT_EQ(r.kernel_count, 10);
  EXPECT_EQ(r.kernel_ns, 1'080'125);
  EXPECT_EQ(r.memcpy_count, 1);
  EXPECT_EQ(r.memcpy_ns, 30'000);
  EXPECT_EQ(r.memset_count, 1);
  EXPECT_EQ(r.memset_ns, 500);
  const auto& c = r.by_class_ns();
  EXPECT_EQ(&c, &r.device_by_class_ns);  // the profile has device work
  EXPECT_EQ(by_class(c, KernelClass::kGemm), 350'000);
  EXPECT_EQ(by_class(c, KernelClass::kAttention), 150'000);
  EXPECT_EQ(by_class(c, KernelClass::kCollective), 510'000);
  EXPECT_EQ(by_class(c, KernelClass::kMemcpy), 30'500);  // the memcpy and the memset
  EXPECT_EQ(by_class(c, KernelClass::kElementwise), 60'125);
  EXPECT_EQ(by_class(c, KernelClass::kOther), 10'000);
  EXPECT_EQ(r.collective_ns[static_cast<int>(CollectiveKind::kAllReduce)], 200'000);
  EXPECT_EQ(r.collective_ns[static_cast<int>(CollectiveKind::kAllGather)], 100'000);
  EXPECT_EQ(r.collective_ns[static_cast<int>(CollectiveKind::kReduceScatter)], 200'000);
  EXPECT_EQ(r.collective_ns[static_cast<int>(CollectiveKind::kSendRecv)], 10'000);

  // Nine distinct kernel names; the GEMM ran twice. Ties (200 µs, 10 µs) by name.
  ASSERT_EQ(r.top_kernels.size(), 9u);
  EXPECT_EQ(r.top_kernels[0].total_ns, 350'000);
  EXPECT_EQ(r.top_kernels[0].count, 2);
  EXPECT_EQ(r.top_kernels[0].kind, KernelClass::kGemm);
  EXPECT_EQ(r.top_kernels[1].name.rfind("ncclDevKernel_AllReduce", 0), 0u);
  EXPECT_EQ(r.top_kernels[2].name.rfind("ncclDevKernel_ReduceScatter", 0), 0u);
  EXPECT_EQ(r.top_kernels[3].kind, KernelClass::kAttention);
  EXPECT_EQ(r.top_kernels[8].name,
            "void at_cuda_detail::cub::DeviceRadixSortOnesweepKernel(int*, int*)");

  // CPU self time: linear 90 - t 3 - addmm 70 = 17 (gemm), addmm 70 (gemm), t 3 (other),
  // flash-attention op 90 - empty 5 = 85, empty 5 (other), record_param_comms 10 + 5 + 5.
  EXPECT_EQ(r.cpu_op_count, 8);
  EXPECT_EQ(r.cpu_op_ns, 200'000);
  EXPECT_EQ(by_class(r.cpu_by_class_ns, KernelClass::kGemm), 87'000);
  EXPECT_EQ(by_class(r.cpu_by_class_ns, KernelClass::kAttention), 85'000);
  EXPECT_EQ(by_class(r.cpu_by_class_ns, KernelClass::kCollective), 20'000);
  EXPECT_EQ(by_class(r.cpu_by_class_ns, KernelClass::kOther), 8'000);
}

TEST(ProfileReader, KinetoFixtureCollectivesDevicesAndCounts) {
  const RankProfile r = read_ok(kKineto);
  // From record_param_comms (the kernel's copy of the all-reduce args is not counted twice),
  // ordered by (name, dtype, group size).
  ASSERT_EQ(r.collectives.size(), 3u);
  EXPECT_EQ(r.collectives[0].name, "_allgather_base");
  EXPECT_EQ(r.collectives[0].kind, CollectiveKind::kAllGather);
  EXPECT_EQ(r.collectives[0].in_nelems, 524288);
  EXPECT_EQ(r.collectives[0].out_nelems, 1048576);
  EXPECT_EQ(r.collectives[0].dtype_bytes, 2);
  EXPECT_EQ(r.collectives[1].name, "allreduce");
  EXPECT_EQ(r.collectives[1].count, 1);
  EXPECT_EQ(r.collectives[1].group_size, 2);
  EXPECT_EQ(r.collectives[2].name, "reduce_scatter_tensor");
  EXPECT_EQ(r.collectives[2].dtype, "Float");
  EXPECT_EQ(r.collectives[2].dtype_bytes, 4);

  // Memory: device 0 peaks at 5 MiB allocated, the host (-1) at 4 KiB.
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].id, -1);
  EXPECT_EQ(r.devices[0].peak_allocated_bytes, 4096);
  EXPECT_EQ(r.devices[1].id, 0);
  EXPECT_EQ(r.devices[1].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(r.devices[1].total_memory_bytes, 85029158912);
  EXPECT_EQ(r.devices[1].compute_major, 9);
  EXPECT_EQ(r.devices[1].peak_allocated_bytes, 5242880);

  EXPECT_EQ(r.events, 42);  // elements of traceEvents
  EXPECT_EQ(r.flows, 2);    // the ac2g pair
  // Unknown kinds are skipped and counted, never fatal.
  EXPECT_EQ(r.skipped,
            (std::map<std::string, int64_t>{{"ph B", 1}, {"ph X, cat some_future_kind", 1}}));
}

TEST(ProfileReader, GzipReadsAsThePlainFile) {
  RankProfile gz = read_ok(kKinetoGz);
  const RankProfile plain = read_ok(kKineto);
  EXPECT_EQ(gz.path, kKinetoGz);
  gz.path = plain.path;
  EXPECT_EQ(gz, plain);
}

TEST(ProfileReader, Torch1CpuList) {
  const RankProfile r = read_ok(kLegacy, 3);
  EXPECT_EQ(r.format, ProfileFormat::kLegacyList);
  EXPECT_EQ(r.rank, 3);  // no distributedInfo: the file's position
  EXPECT_FALSE(r.rank_from_trace);
  EXPECT_EQ(r.world_size, 0);
  ASSERT_EQ(r.steps.size(), 3u);
  EXPECT_EQ(r.steps[0].duration_ns, 500'000);
  EXPECT_EQ(r.steps[1].duration_ns, 400'000);
  EXPECT_EQ(r.steps[2].duration_ns, 350'000);
  EXPECT_EQ(r.steps[2].gpu_busy_ns, 0);
  EXPECT_FALSE(r.has_device_activity());
  EXPECT_EQ(r.kernel_ns, 0);
  // Self times (µs): gemm = linear 50-2-40 = 8, addmm 40 + 40, mm 40 + 15 + 20 = 163;
  // attention = softmax 20-18 = 2, _softmax 18; elementwise = relu 10-6 = 4, clamp_min 6,
  // mse_loss 10, add_ 10 + 10, zero_ 2, the remote add 5 = 47; memcpy = to 2, _to_copy 2,
  // copy_ 6; other = t 2, AddmmBackward0 70-55 = 15, evaluate_function 80-70 = 10,
  // the optimizer step 50-20 = 30.
  const auto& c = r.by_class_ns();
  EXPECT_EQ(&c, &r.cpu_by_class_ns);
  EXPECT_EQ(by_class(c, KernelClass::kGemm), 163'000);
  EXPECT_EQ(by_class(c, KernelClass::kAttention), 20'000);
  EXPECT_EQ(by_class(c, KernelClass::kElementwise), 47'000);
  EXPECT_EQ(by_class(c, KernelClass::kMemcpy), 10'000);
  EXPECT_EQ(by_class(c, KernelClass::kOther), 57'000);
  EXPECT_EQ(by_class(c, KernelClass::kCollective), 0);
  EXPECT_EQ(r.cpu_op_count, 22);
  EXPECT_EQ(r.cpu_op_ns, 297'000);
  EXPECT_EQ(r.events, 25);
  ASSERT_FALSE(r.top_cpu_ops.empty());
  EXPECT_EQ(r.top_cpu_ops[0].name, "aten::addmm");
  EXPECT_EQ(r.top_cpu_ops[0].total_ns, 80'000);
}

// A Kineto trace of the given events, written to `dir`.
std::string kineto_file(const TempDir& dir, const std::string& name, const std::string& events,
                        const std::string& extra = "") {
  return dir.write(name, "{" + extra + "\"traceEvents\": [" + events + "]}");
}

std::string kernel(const std::string& ts, const std::string& dur, int device = 0, int stream = 7) {
  return "{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"k\", \"pid\": " +
         std::to_string(device) + ", \"tid\": " + std::to_string(stream) + ", \"ts\": " + ts +
         ", \"dur\": " + dur + "}";
}

std::string step(const std::string& name, const std::string& ts, const std::string& dur) {
  return "{\"ph\": \"X\", \"cat\": \"user_annotation\", \"name\": \"" + name +
         "\", \"pid\": 1, \"tid\": 1, \"ts\": " + ts + ", \"dur\": " + dur + "}";
}

TEST(ProfileReader, TimesAreExactNanoseconds) {
  TempDir dir;
  // 1.0005 µs rounds half away from zero to 1001 ns; 2.5e3 µs (an exponent) is 2.5 ms; an
  // integer 7 µs is 7000 ns; digits past the third decimal round.
  const std::string path = kineto_file(dir, "times.json",
                                       kernel("0", "1.0005") + "," + kernel("10", "2.5e3") + "," +
                                           kernel("20000", "7") + "," + kernel("30000", "0.0004") +
                                           "," + kernel("1700000000000000.123", "0.001"));
  const RankProfile r = read_ok(path);
  EXPECT_EQ(r.kernel_ns, 1001 + 2'500'000 + 7000 + 0 + 1);
  EXPECT_EQ(r.kernel_count, 5);
}

TEST(ProfileReader, BusyTimeIsAUnionAcrossStreamsAndDevices) {
  TempDir dir;
  // One step [100, 200) µs. Device 0 stream 7: [90, 120) and [150, 160); stream 8: [110, 130);
  // device 1: [195, 250). Inside the step: device 0 [100, 130) + [150, 160) = 40, device 1
  // [195, 200) = 5; all devices 45.
  const std::string path = kineto_file(
      dir, "union.json",
      step("ProfilerStep#0", "100", "100") + "," + kernel("90", "30") + "," + kernel("150", "10") +
          "," + kernel("110", "20", 0, 8) + "," + kernel("195", "55", 1, 7));
  const RankProfile r = read_ok(path);
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].gpu_busy_ns, 45'000);
  EXPECT_EQ(r.steps[0].devices, (std::vector<ProfileStreamBusy>{{0, -1, 40'000}, {1, -1, 5'000}}));
  EXPECT_EQ(r.steps[0].streams,
            (std::vector<ProfileStreamBusy>{{0, 7, 30'000}, {0, 8, 20'000}, {1, 7, 5'000}}));
  EXPECT_EQ(r.kernel_ns, (30 + 10 + 20 + 55) * 1000);  // sums, not the union
}

TEST(ProfileReader, UnknownKindsAreCountedNotFatal) {
  TempDir dir;
  std::string events = "{\"ph\": \"E\", \"ts\": 1}";
  for (int i = 0; i < 70; ++i) {
    events += ",{\"ph\": \"X\", \"cat\": \"future_" + std::to_string(i) +
              "\", \"name\": \"x\", \"ts\": 1, \"dur\": 1}";
  }
  const RankProfile r = read_ok(kineto_file(dir, "unknown.json", events));
  EXPECT_EQ(r.events, 71);
  int64_t skipped = 0;
  for (const auto& [kind, count] : r.skipped) skipped += count;
  EXPECT_EQ(skipped, 71);
  EXPECT_EQ(r.skipped.size(), 65u);  // 64 kinds named, the rest together
  EXPECT_EQ(r.skipped.at("(more kinds)"), 7);
  EXPECT_EQ(r.skipped.at("ph E"), 1);
}

TEST(ProfileReader, RanksFromDistributedInfoElseFileOrder) {
  // The list first: rank 0 by its position; the Kineto trace says rank 1. Sorted by rank.
  StatusOr<std::vector<RankProfile>> ranks = read_profiles({kKineto, kLegacy});
  ASSERT_FALSE(ranks.ok());  // here the list is second, so position 1: the Kineto trace's rank
  EXPECT_EQ(ranks.status().message(),
            kLegacy + ": rank 1 is also the rank of " + kKineto +
                " (ranks come from distributedInfo.rank, else from the file's position on the "
                "command line)");
  ranks = read_profiles({kLegacy, kKineto});
  ASSERT_TRUE(ranks.ok()) << ranks.status().message();
  ASSERT_EQ(ranks->size(), 2u);
  EXPECT_EQ((*ranks)[0].path, kLegacy);
  EXPECT_EQ((*ranks)[0].rank, 0);
  EXPECT_EQ((*ranks)[1].path, kKineto);
  EXPECT_EQ((*ranks)[1].rank, 1);
}

std::string refusal(const std::string& path);

TEST(ProfileReader, StepDetailIsBoundedAndStepsAreCounted) {
  TempDir dir;
  // 1,000 steps × 300 streams is past the 2^18 per-step entries: steps keep their totals.
  std::string events;
  for (int i = 0; i < 1000; ++i) {
    events += step("ProfilerStep#" + std::to_string(i), std::to_string(i * 10), "10") + ",";
  }
  for (int s = 0; s < 300; ++s) events += kernel("0", "5", 0, s) + ",";
  events += kernel("10", "1");
  const RankProfile r = read_ok(kineto_file(dir, "wide.json", events));
  ASSERT_EQ(r.steps.size(), 1000u);
  EXPECT_TRUE(r.step_detail_omitted);
  EXPECT_TRUE(r.steps[0].streams.empty());
  EXPECT_EQ(r.steps[0].gpu_busy_ns, 5'000);  // the union of the 300 overlapping kernels
  EXPECT_EQ(r.steps[1].gpu_busy_ns, 1'000);

  std::string many;
  for (int i = 0; i <= 16384; ++i) {
    many += (i ? "," : "") + step("ProfilerStep#" + std::to_string(i), std::to_string(i), "1");
  }
  const std::string path = kineto_file(dir, "steps.json", many);
  const std::string m = refusal(path);
  EXPECT_NE(m.find("traceEvents[16384]: more than 16384 ProfilerStep ranges at byte"),
            std::string::npos)
      << m;
}

// The message of reading `path`, which must be refused as bad input.
std::string refusal(const std::string& path) {
  StatusOr<RankProfile> r = read_profile(path, 0);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(r.status().message().rfind(path + ": ", 0), 0u) << r.status().message();
  return r.status().message();
}

std::string gzip_bytes(const std::string& text) {
  uLongf size = compressBound(text.size()) + 64;
  std::string out(size, '\0');
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // +16: gzip wrapper
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(ProfileReader, RefusesTruncatedFiles) {
  TempDir dir;
  const std::string text = slurp(kKineto);
  const std::string cut = dir.write("cut.json", text.substr(0, 5000));
  const std::string m = refusal(cut);
  EXPECT_NE(m.find("truncated: the JSON ends early at byte 5001"), std::string::npos) << m;
  EXPECT_NE(m.find("(in traceEvents["), std::string::npos) << m;

  const std::string gz = gzip_bytes(text);
  const std::string cut_gz = dir.write("cut.json.gz", gz.substr(0, gz.size() / 2));
  const std::string mg = refusal(cut_gz);
  EXPECT_NE(mg.find("truncated gzip data after"), std::string::npos) << mg;
}

TEST(ProfileReader, RefusesWrongTypes) {
  TempDir dir;
  const std::string events =
      "{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"k\", \"ts\": 1, \"dur\": \"abc\"}";
  const std::string path = kineto_file(dir, "dur.json", events);
  // The byte: the closing quote of "abc", the last the parser read.
  const std::string text = slurp(path);
  const std::size_t quote = text.find("\"abc\"") + 5;
  EXPECT_EQ(refusal(path),
            path + ": traceEvents[0].dur: expected a number (µs), got \"abc\" at byte " +
                std::to_string(quote));

  const std::string not_array = dir.write("obj.json", "{\"traceEvents\": {\"a\": 1}}");
  EXPECT_EQ(refusal(not_array),
            not_array + ": traceEvents: expected a JSON array, got an object at byte 17");

  const std::string scalar_event = dir.write("list.json", "[{\"ph\": \"i\", \"ts\": 1}, 7]");
  // Byte 25: the ']' after the 7, which the parser read to see the number end.
  EXPECT_EQ(refusal(scalar_event),
            scalar_event + ": event [1]: expected an event object, got 7 at byte 25");

  const std::string args = kineto_file(
      dir, "args.json",
      "{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"k\", \"ts\": 1, \"dur\": 1, \"args\": "
      "{\"stream\": \"seven\"}}");
  const std::string args_text = slurp(args);
  EXPECT_EQ(refusal(args), args + ": traceEvents[0].args.stream: expected an integer, got " +
                               "\"seven\" at byte " +
                               std::to_string(args_text.find("\"seven\"") + 7));

  const std::string no_ph = dir.write("noph.json", "[{\"name\": \"x\"}]");
  EXPECT_NE(refusal(no_ph).find("event [0].ph: required key is missing"), std::string::npos);

  const std::string root = dir.write("root.json", "42");
  EXPECT_NE(
      refusal(root).find("expected a JSON object with traceEvents, or a list of events, got 42"),
      std::string::npos);

  const std::string rank =
      kineto_file(dir, "rank.json", "", "\"distributedInfo\": {\"rank\": 4, \"world_size\": 2}, ");
  EXPECT_NE(refusal(rank).find("distributedInfo: rank 4 of a world of 2"), std::string::npos);
  const std::string big_rank =
      kineto_file(dir, "bigrank.json", "", "\"distributedInfo\": {\"rank\": 200000}, ");
  EXPECT_NE(refusal(big_rank).find("distributedInfo.rank: expected an integer in [0, 131071]"),
            std::string::npos);
}

TEST(ProfileReader, RefusesDeepNesting) {
  TempDir dir;
  // Under a key the reader does not use: the 64th '[' after "{\"x\": " (byte 7) is level 65.
  const std::string deep = dir.write("deep.json", "{\"x\": " + std::string(100'000, '['));
  EXPECT_EQ(refusal(deep), deep + ": JSON nested deeper than 64 at byte 70");
  // A bare list of lists fails sooner, at its first element.
  const std::string lists = dir.write("lists.json", std::string(100'000, '['));
  EXPECT_EQ(refusal(lists),
            lists + ": event [0]: expected an event object, got an array at byte 2");
  // Inside an event's args, the message says where.
  const std::string in_args = dir.write(
      "deep_args.json", "{\"traceEvents\": [{\"ph\": \"X\", \"args\": {\"x\": " +
                            std::string(100'000, '[') + std::string(100'000, ']') + "}}]}");
  const std::string m = refusal(in_args);
  EXPECT_NE(m.find("JSON nested deeper than 64 at byte "), std::string::npos) << m;
  EXPECT_NE(m.find("(in traceEvents[0].args)"), std::string::npos) << m;
}

TEST(ProfileReader, RefusesNumbersOutOfRange) {
  TempDir dir;
  const std::string overflow = kineto_file(dir, "inf.json", kernel("1e999", "1"));
  const std::string m = refusal(overflow);
  EXPECT_NE(m.find("number out of range: 1e999 at byte"), std::string::npos) << m;
  EXPECT_NE(m.find("(in traceEvents[0])"), std::string::npos) << m;

  const std::string huge = kineto_file(dir, "huge.json", kernel("1e300", "1"));
  EXPECT_NE(refusal(huge).find("traceEvents[0].ts: 1e300 µs is out of range"), std::string::npos);
  const std::string negative = kineto_file(dir, "neg.json", kernel("5", "-2.5"));
  EXPECT_NE(refusal(negative).find("traceEvents[0].dur: negative duration -2.5 µs"),
            std::string::npos);
  const std::string big_int = kineto_file(dir, "bigint.json", kernel("18446744073709551615", "1"));
  EXPECT_NE(refusal(big_int).find("traceEvents[0].ts: an integer past 2^63 µs is out of range"),
            std::string::npos);
}

TEST(ProfileReader, RefusesBadUtf8AndLongStrings) {
  TempDir dir;
  const std::string bad = kineto_file(
      dir, "utf8.json", "{\"ph\": \"X\", \"name\": \"aten::mm\xff\", \"ts\": 1, \"dur\": 1}");
  const std::string m = refusal(bad);
  EXPECT_NE(m.find("not valid JSON at byte"), std::string::npos) << m;
  EXPECT_NE(m.find("ill-formed UTF-8 byte"), std::string::npos) << m;
  EXPECT_NE(m.find("(in traceEvents[0])"), std::string::npos) << m;
  EXPECT_EQ(m.find('\xff'), std::string::npos);  // the message itself is clean text

  const std::string long_name = kineto_file(
      dir, "long.json", "{\"ph\": \"X\", \"name\": \"" + std::string(2 << 20, 'a') + "\"}");
  const std::string ml = refusal(long_name);
  // Checked once per 256 KiB chunk: the first chunk boundary past 1 MiB of the name.
  EXPECT_NE(ml.find(": more than 1048576 bytes at byte 1310720 since the last string or number "
                    "ended"),
            std::string::npos)
      << ml;
}

TEST(ProfileReader, RefusesMissingTraceEventsEmptyFilesAndDirectories) {
  TempDir dir;
  const std::string none = dir.write("none.json", "{\"schemaVersion\": 1}");
  EXPECT_NE(refusal(none).find("no \"traceEvents\" key: not a PyTorch profiler trace"),
            std::string::npos);
  const std::string empty = dir.write("empty.json", "");
  EXPECT_NE(refusal(empty).find("empty file"), std::string::npos);
  EXPECT_NE(refusal(dir.path()).find("not a regular file (a directory)"), std::string::npos);
  EXPECT_NE(refusal(dir.path() + "/missing.json").find("cannot open file"), std::string::npos);
}

}  // namespace
}  // namespace cf
