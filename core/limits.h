// The largest sizes an input may ask for, checked where each value is read (exit 2, with the
// file, the key and the bound). Each admits every real job with room to spare — contexts of
// 16M tokens, clusters of 100,000 GPUs, global batches of 65,536 sequences, models of 2T
// parameters — and keeps the work and memory a job implies finite and the products of sizes
// inside int64 (a longest sequence of 2^24 tokens times a batch of 2^16 is 2^40 tokens; a
// layer's 2^12 × 2^17 channels times 2^24 tokens is 2^53). docs/LIMITS.md lists them all.
#pragma once

#include <cstdint>

namespace cf::limits {

// Job files (sim/plan/job.cc); kMaxTokens also bounds dataset lengths (traces/).
inline constexpr int64_t kMaxTokens = int64_t{1} << 24;  // a sequence, max_length, ChunkSize
inline constexpr const char* kMaxTokensWhy = "16M tokens, core/limits.h";
inline constexpr int64_t kMaxGlobalBatch = int64_t{1} << 16;  // sequences per step
inline constexpr int64_t kMaxSteps = 1000;                    // sampled steps simulated
inline constexpr int64_t kMaxK = int64_t{1} << 24;            // chunks keeping activations
// GPUs in a cluster (the largest training clusters of 2025 hold ~100,000).
inline constexpr int64_t kMaxGpus = int64_t{1} << 17;
inline constexpr const char* kMaxGpusWhy = "131,072 GPUs, core/limits.h";

// Model dimensions (the largest published dense models: hidden 25,600, 128 layers, a
// 256K vocabulary, ~1T parameters).
inline constexpr int64_t kMaxHidden = int64_t{1} << 17;     // hidden, and heads × head_dim
inline constexpr int64_t kMaxFfnHidden = int64_t{1} << 19;  // the MLP's inner width
inline constexpr int64_t kMaxLayers = int64_t{1} << 12;
inline constexpr int64_t kMaxHeads = int64_t{1} << 12;  // query heads (and K/V heads)
inline constexpr int64_t kMaxHeadDim = int64_t{1} << 12;
inline constexpr int64_t kMaxVocab = int64_t{1} << 22;
inline constexpr int64_t kMaxParameters = int64_t{1} << 42;  // 4.4T
inline constexpr const char* kMaxModelWhy = "core/limits.h: models to 4.4T parameters";

// Work a job implies. One simulated op holds ~700 bytes while a step is simulated (measured:
// 1.3M ops in 0.92 GB, docs/LIMITS.md), so a step's plan is bounded to 4M ops (~3 GB) and
// its chunks, built before the ops, to 1M.
inline constexpr int64_t kMaxChunksPerStep = int64_t{1} << 20;
inline constexpr int64_t kMaxOpsPerStep = int64_t{1} << 22;
// Ops of a recorded trace (`simulate --trace`): 128K ops made 888K events, a 150 MB file and
// a 1.56 GB peak (docs/LIMITS.md); the examples' largest trace has a few thousand ops.
inline constexpr int64_t kMaxTraceOps = int64_t{1} << 17;
// Ops simulated by one `simulate` over all its steps (~10 minutes at ~0.4M ops/s).
inline constexpr int64_t kMaxSimulatedOps = int64_t{1} << 28;
// Chunks a tune holds at once: every (packer, ChunkSize) chunking of every sampled step.
inline constexpr int64_t kMaxTuneChunks = int64_t{1} << 24;
// Points of one sweep (each is a tune of seconds).
inline constexpr int64_t kMaxSweepPoints = 1024;

// Input files, checked with stat before a byte is read (core/resources.h read_text_file): a
// directory, a device (/dev/zero streams forever), a pipe or a socket is refused, as is a
// file over its kind's bound. The shipped YAMLs and config.json files are under 10 KiB;
// yaml-cpp's tree takes about 70 times the text (12 MB of cdf pairs: 855 MB), so 64 MiB of
// YAML is already 4 GB of memory.
inline constexpr int64_t kMaxTextFileBytes = int64_t{64} << 20;  // YAML, config.json, tables
inline constexpr const char* kMaxTextFileBytesWhy =
    "64 MiB for a YAML or JSON input, core/limits.h";
// A dataset's raw lengths or token ids (text, CSV, JSONL): 2^26 lengths of up to 8 digits
// and a newline take 600 MB; the largest fine-tuning sets have tens of millions of sequences.
inline constexpr int64_t kMaxDatasetFileBytes = int64_t{1} << 30;
inline constexpr const char* kMaxDatasetFileBytesWhy = "1 GiB for a dataset file, core/limits.h";
inline constexpr int64_t kMaxDatasetLengths = int64_t{1} << 26;  // sequences in a raw list
inline constexpr const char* kMaxDatasetLengthsWhy = "2^26 sequences, core/limits.h";
// A Chrome trace (compare): a simulated step of qwen2.5-72b on 64 GPUs at 256K context
// (examples/qwen2.5-72b-256k.yaml) writes 5.7 MB, and traces grow with DP ranks and batch;
// nlohmann's tree takes about 9 times the text (5.7 MB: 47 MB).
inline constexpr int64_t kMaxTraceFileBytes = int64_t{2} << 30;
inline constexpr const char* kMaxTraceFileBytesWhy = "2 GiB for a trace, core/limits.h";

// PyTorch profiler traces (`chunkflow profile`, traces/profile.h). They are read as a stream
// of events, each dropped once its few numbers are kept, so a file's size bounds only the time
// (docs/BENCHMARKS.md, "Profile reader"). What is kept is bounded: 2^24 kept events (kernels,
// memcpys, memsets and CPU ops, 24 bytes each: 384 MiB, and 4 bytes each while the summary
// runs) and 128 MiB of distinct names, under 700 MB however hostile the file. A 500 MB Kineto
// trace keeps about 1M events; 2^24 is a trace of some 8 GB.
inline constexpr int64_t kMaxProfileFileBytes = int64_t{16} << 30;  // on disk, and decompressed
inline constexpr const char* kMaxProfileFileBytesWhy = "16 GiB for a profile, core/limits.h";
inline constexpr int64_t kMaxProfileKeptEvents = int64_t{1} << 24;
inline constexpr const char* kMaxProfileKeptEventsWhy =
    "2^24 kernels, memcpys, memsets and CPU ops per profile, core/limits.h";
// Text after the last string or number ended (checked once per 256 KiB chunk): nlohmann's
// lexer holds a token's text, and the raw text since the last string or number began, so this
// bounds the parser's buffers (the longest kernel names are a few KiB).
inline constexpr int64_t kMaxProfileTokenBytes = int64_t{1} << 20;
inline constexpr int64_t kMaxProfileNameBytes = int64_t{128} << 20;  // distinct names, in all
inline constexpr int64_t kMaxProfileTracks = int64_t{1} << 16;       // (device, stream), (pid, tid)
inline constexpr int64_t kMaxProfileSteps = int64_t{1} << 14;        // ProfilerStep ranges
// Timestamps and durations in ns: 2^61 ns is 73 years, so ts + dur stays inside int64 and
// Kineto's absolute times (ns since 1970, ~1.8e18) are admitted.
inline constexpr int64_t kMaxProfileTimeNs = int64_t{1} << 61;

// JSON nesting (core/json_reader.h parse_json): the deepest real input (a Chrome trace's
// args, a config.json's rope_scaling) nests 4 levels; nlohmann's dump, copy and comparison
// recurse once per level, so 200,000 nested '[' overflowed the stack.
inline constexpr int kMaxJsonDepth = 64;

}  // namespace cf::limits
