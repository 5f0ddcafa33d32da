// Length distributions: the shipped datasets load, the YAML/text/CSV/JSONL readers convert to
// the "<=" CDF form, and bad inputs are errors naming file, line and key.
#include "traces/distribution.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/limits.h"
#include "core/resources.h"

namespace cf {
namespace {

using Cdf = std::vector<std::pair<int64_t, double>>;

const std::vector<std::string> kShipped = {"bytescale-byted",
                                           "chatqa2-long-sft",
                                           "llama3-sft-mix",
                                           "lmsys-chat-1m",
                                           "longbench",
                                           "wikipedia-cn",
                                           "wlbllm-meta-128k-reconstruction"};

TEST(Distribution, EveryShippedDistributionLoads) {
  std::vector<std::string> embedded;
  for (const auto& path : embedded_files_under("traces/datasets")) {
    embedded.push_back(std::filesystem::path(path).stem().string());
  }
  EXPECT_EQ(embedded, kShipped);
  for (const std::string& name : kShipped) {
    SCOPED_TRACE(name);
    StatusOr<LengthDistribution> dist = load_distribution(name);
    ASSERT_TRUE(dist.ok()) << dist.status().message();
    EXPECT_EQ(dist->name, name);  // job files say `distribution: NAME`
    EXPECT_EQ(dist->origin, "<embedded:traces/datasets/" + name + ".yaml>");
    EXPECT_FALSE(dist->source.empty());
    EXPECT_FALSE(dist->notes.empty());
    EXPECT_FALSE(dist->tokenizer.empty());
    ASSERT_GE(dist->cdf.size(), 4u);
    EXPECT_EQ(dist->cdf.back().second, 1.0);
    EXPECT_GE(dist->max_length, dist->cdf.back().first);
    EXPECT_TRUE(dist->raw_lengths.empty());
    const double mean = dist->mean_length();
    EXPECT_GT(mean, 1.0);
    EXPECT_LT(mean, static_cast<double>(dist->cdf.back().first));
  }
}

TEST(Distribution, ShippedValuesUseTheLessOrEqualConvention) {
  // Skrull's "<1K 87.12%" is stored as "<= 1023"; ByteScale's "<= 4K" stays at 4096.
  StatusOr<LengthDistribution> lmsys = load_distribution("lmsys-chat-1m");
  ASSERT_TRUE(lmsys.ok());
  EXPECT_EQ(lmsys->cdf.front(), (std::pair<int64_t, double>{1023, 0.8712}));
  EXPECT_EQ(lmsys->max_length, 1682432);
  EXPECT_EQ(lmsys->samples, 1000000);
  StatusOr<LengthDistribution> byted = load_distribution("bytescale-byted");
  ASSERT_TRUE(byted.ok());
  EXPECT_EQ(byted->cdf.front(), (std::pair<int64_t, double>{4096, 0.80}));
  EXPECT_EQ(byted->samples, 0);  // "samples: null"
  StatusOr<LengthDistribution> wiki = load_distribution("wikipedia-cn");
  ASSERT_TRUE(wiki.ok());
  EXPECT_EQ(wiki->full_name, "wikipedia-cn-20230720-filtered");
}

TEST(Distribution, UnknownNameListsTheShippedOnes) {
  StatusOr<LengthDistribution> dist = load_distribution("lmsys-chat-2m");
  ASSERT_FALSE(dist.ok());
  EXPECT_EQ(dist.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(dist.status().message().find("lmsys-chat-2m"), std::string::npos);
  EXPECT_NE(dist.status().message().find("longbench"), std::string::npos);
}

TEST(Distribution, HistogramBecomesCdf) {
  StatusOr<LengthDistribution> dist = parse_distribution_yaml(
      "histogram:\n  - [10, 1]\n  - [20, 3]\n  - [40, 0]\n  - [50, 4]\n", "dir/h.yaml");
  ASSERT_TRUE(dist.ok()) << dist.status().message();
  EXPECT_EQ(dist->name, "h");  // no name: the file stem
  EXPECT_EQ(dist->cdf, (Cdf{{10, 0.125}, {20, 0.5}, {40, 0.5}, {50, 1.0}}));
  EXPECT_EQ(dist->max_length, 50);
}

TEST(Distribution, CdfKeepsDeclaredFieldsAndMaxLength) {
  StatusOr<LengthDistribution> dist = parse_distribution_yaml(
      "name: toy\nsource: made up\ntokenizer: none\nsamples: 17\nnotes: odd sizes\n"
      "cdf: [[1, 0.0], [17, 0.25], [81, 0.25], [987, 1]]\nmax_length: 1000\n",
      "toy.yaml");
  ASSERT_TRUE(dist.ok()) << dist.status().message();
  EXPECT_EQ(dist->name, "toy");
  EXPECT_EQ(dist->source, "made up");
  EXPECT_EQ(dist->samples, 17);
  EXPECT_EQ(dist->cdf, (Cdf{{1, 0.0}, {17, 0.25}, {81, 0.25}, {987, 1.0}}));
  EXPECT_EQ(dist->max_length, 1000);
}

TEST(Distribution, TextLinesAndCommas) {
  StatusOr<LengthDistribution> dist =
      parse_raw_lengths("# lengths of a toy set\n5\n3\n\n3, 9\r\n", "toy.txt");
  ASSERT_TRUE(dist.ok()) << dist.status().message();
  EXPECT_EQ(dist->raw_lengths, (std::vector<int64_t>{3, 3, 5, 9}));
  EXPECT_EQ(dist->cdf, (Cdf{{3, 0.5}, {5, 0.75}, {9, 1.0}}));
  EXPECT_EQ(dist->max_length, 9);
  EXPECT_EQ(dist->samples, 4);
  EXPECT_EQ(dist->mean_length(), 5.0);
}

TEST(Distribution, CsvLengthColumnUnderHeader) {
  StatusOr<LengthDistribution> dist =
      parse_raw_lengths("id,Length,lang\n1,17,en\n2,81,zh\n3,1,en\n", "set.csv");
  ASSERT_TRUE(dist.ok()) << dist.status().message();
  EXPECT_EQ(dist->raw_lengths, (std::vector<int64_t>{1, 17, 81}));
}

TEST(Distribution, JsonlLengthAndInputIds) {
  StatusOr<LengthDistribution> dist = parse_jsonl_lengths(
      "{\"length\": 7, \"text\": \"x\"}\n\n{\"input_ids\": [1, 2, 3]}\n"
      "{\"length\": 2, \"input_ids\": [5, 6]}\n",
      "set.jsonl");
  ASSERT_TRUE(dist.ok()) << dist.status().message();
  EXPECT_EQ(dist->raw_lengths, (std::vector<int64_t>{2, 3, 7}));
  EXPECT_EQ(dist->name, "set");
}

TEST(Distribution, LoadsFilesByPathAndExtension) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "cf_dist_test";
  std::filesystem::create_directories(dir);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"a.yaml", "cdf: [[100, 0.5], [200, 1.0]]\n"},
      {"b.txt", "4\n2\n1\n1\n"},
      {"c.csv", "length\n4\n2\n"},
      {"d.jsonl", "{\"input_ids\": [9]}\n"},
      {"e", "{\"length\": 5}\n"},  // no extension: sniffed
  };
  for (const auto& [file, text] : files) {
    SCOPED_TRACE(file);
    const std::string path = (dir / file).string();
    std::ofstream(path) << text;
    StatusOr<LengthDistribution> dist = load_distribution(path);
    ASSERT_TRUE(dist.ok()) << dist.status().message();
    EXPECT_EQ(dist->origin, path);
    EXPECT_EQ(dist->cdf.back().second, 1.0);
  }
}

// Bad inputs: each message must carry every listed fragment (file:line[:col], key path, reason).
struct BadInput {
  const char* label;
  const char* kind;  // "yaml", "raw" or "jsonl"
  const char* text;
  std::vector<std::string> fragments;
};

StatusOr<LengthDistribution> parse(const BadInput& input) {
  const std::string kind = input.kind;
  if (kind == "yaml") return parse_distribution_yaml(input.text, "bad.yaml");
  if (kind == "raw") return parse_raw_lengths(input.text, "bad.txt");
  return parse_jsonl_lengths(input.text, "bad.jsonl");
}

TEST(Distribution, BadInputsNameFileLineAndKey) {
  const std::vector<BadInput> cases = {
      {"decreasing cdf",
       "yaml",
       "cdf:\n  - [10, 0.5]\n  - [20, 0.4]\n  - [30, 1.0]\n",
       {"bad.yaml:3:10: cdf[1]:", "decreases", "0.4", "0.5"}},
      {"lengths not increasing",
       "yaml",
       "cdf:\n  - [10, 0.5]\n  - [10, 1.0]\n",
       {"bad.yaml:3:6: cdf[1]:", "not greater"}},
      {"fraction above 1",
       "yaml",
       "cdf:\n  - [10, 0.5]\n  - [20, 1.5]\n",
       {"bad.yaml:3:10: cdf[1]:", "between 0 and 1", "1.5"}},
      {"last fraction not 1",
       "yaml",
       "cdf:\n  - [10, 0.5]\n  - [20, 0.9]\n",
       {"bad.yaml:3:5: cdf[1]:", "last fraction must be 1"}},
      {"negative count",
       "yaml",
       "histogram:\n  - [10, 3]\n  - [20, -1]\n",
       {"bad.yaml:3:10: histogram[1]:", "must not be negative", "-1"}},
      {"all counts zero",
       "yaml",
       "histogram:\n  - [10, 0]\n  - [20, 0]\n",
       {"bad.yaml:2:3: histogram:", "all counts are zero"}},
      {"empty cdf", "yaml", "name: x\ncdf: []\n", {"bad.yaml:2:6: cdf:", "empty"}},
      {"no cdf or histogram", "yaml", "name: x\n", {"bad.yaml:1:1: cdf:", "missing"}},
      {"both cdf and histogram",
       "yaml",
       "cdf: [[1, 1]]\nhistogram: [[1, 1]]\n",
       {"bad.yaml:2:12: histogram:", "not both"}},
      {"unknown key",
       "yaml",
       "cdf: [[10, 1.0]]\nsampels: 3\n",
       {"bad.yaml:2:1: sampels:", "unknown key"}},
      {"wrong type of cdf", "yaml", "cdf: {a: 1}\n", {"bad.yaml:1:6: cdf:", "list"}},
      {"wrong type in a pair",
       "yaml",
       "cdf:\n  - [ten, 1.0]\n",
       {"bad.yaml:2:5: cdf[0]:", "expected two numbers", "ten"}},
      {"pair of three", "yaml", "cdf:\n  - [10, 0.5, 3]\n", {"bad.yaml:2:5: cdf[0]:", "pair"}},
      {"fractional length",
       "yaml",
       "cdf:\n  - [10.5, 1.0]\n",
       {"bad.yaml:2:6: cdf[0]:", "positive integer", "10.5"}},
      {"wrong type of max_length",
       "yaml",
       "cdf: [[10, 1.0]]\nmax_length: lots\n",
       {"bad.yaml:2:13: max_length:", "expected an integer", "lots"}},
      {"max_length below the data",
       "yaml",
       "cdf: [[10, 1.0]]\nmax_length: 9\n",
       {"bad.yaml:2:13: max_length:", "at least"}},
      {"samples zero", "yaml", "cdf: [[10, 1.0]]\nsamples: 0\n", {"bad.yaml:2:10: samples:"}},
      {"empty text", "raw", "# nothing here\n\n", {"bad.txt:", "no lengths"}},
      {"non-integer length", "raw", "5\n 7x\n", {"bad.txt:2:2:", "\"7x\""}},
      {"zero length", "raw", "5,0\n", {"bad.txt:1:3:", "at least 1"}},
      {"csv without length column", "raw", "id,text\n1,a\n", {"bad.txt:1:", "`length` column"}},
      {"csv ragged row", "raw", "id,length\n1,5\n2\n", {"bad.txt:3:", "expected 2 fields"}},
      {"empty jsonl", "jsonl", "\n", {"bad.jsonl:", "no records"}},
      {"jsonl without length",
       "jsonl",
       "{\"length\": 3}\n{\"text\": \"hi\"}\n",
       {"bad.jsonl:2:", "neither", "length", "input_ids"}},
      {"jsonl negative length", "jsonl", "{\"length\": -3}\n", {"bad.jsonl:1:", "length:", "-3"}},
      {"jsonl ids disagree",
       "jsonl",
       "{\"length\": 3, \"input_ids\": [1]}\n",
       {"bad.jsonl:1:", "length:", "disagrees"}},
      {"jsonl broken line",
       "jsonl",
       "{\"length\": 3}\n{\"length\": 3}\n{\"length\": \n",
       {"bad.jsonl:3:", "not valid JSON"}},
      {"jsonl not an object", "jsonl", "[1, 2]\n", {"bad.jsonl:1:", "object"}},
      // Lengths past limits::kMaxTokens, in every format, with the file, line and bound.
      {"cdf length over the bound",
       "yaml",
       "cdf:\n  - [10, 0.5]\n  - [1000000000000, 1.0]\n",
       {"bad.yaml:3:6: cdf[1]: length must be at most 16777216 (16M tokens, core/limits.h), got "
        "1000000000000"}},
      {"histogram length over the bound",
       "yaml",
       "histogram:\n  - [1e12, 3]\n",
       {"bad.yaml:2:6: histogram[0]: length must be at most 16777216 (16M tokens, core/limits.h), "
        "got 1e12"}},
      {"max_length over the bound",
       "yaml",
       "cdf: [[10, 1.0]]\nmax_length: 16777217\n",
       {"bad.yaml:2:13: max_length: must be at most 16777216 (16M tokens, core/limits.h), got "
        "16777217"}},
      {"raw length over the bound",
       "raw",
       "5\n7, 16777217\n",
       {"bad.txt:2:4: a length must be at most 16777216 (16M tokens, core/limits.h), got "
        "16777217"}},
      {"raw length past int64",
       "raw",
       "99999999999999999999999\n",
       {"bad.txt:1:1: a length must be at most 16777216", "got 99999999999999999999999"}},
      {"jsonl length over the bound",
       "jsonl",
       "{\"length\": 3}\n{\"length\": 1000000000000}\n",
       {"bad.jsonl:2: length: must be at most 16777216 (16M tokens, core/limits.h), got "
        "1000000000000"}},
      {"jsonl length past uint64",
       "jsonl",
       "{\"length\": 1e30}\n",
       {"bad.jsonl:1: length: must be at most 16777216", "got 1e+30"}},
      // 1e999 fits no double: nlohmann's out_of_range once escaped the reader (exit 134).
      {"jsonl length out of range",
       "jsonl",
       "{\"length\": 3}\n\n{\"length\": 1e999}\n",
       {"bad.jsonl:3: length: number out of range: 1e999"}},
      {"jsonl fractional length",
       "jsonl",
       "{\"length\": 2.5}\n",
       {"bad.jsonl:1: length: expected a positive integer, got 2.5"}},
  };
  for (const BadInput& input : cases) {
    SCOPED_TRACE(input.label);
    StatusOr<LengthDistribution> dist = parse(input);
    ASSERT_FALSE(dist.ok());
    EXPECT_EQ(dist.status().code(), StatusCode::kInvalidInput);
    for (const std::string& fragment : input.fragments) {
      EXPECT_NE(dist.status().message().find(fragment), std::string::npos)
          << "missing \"" << fragment << "\" in: " << dist.status().message();
    }
  }
}

// 200,000 nested '[' in a record overflowed the stack (SIGSEGV) once the message printed the
// value; the depth is refused before parsing, at the byte that goes past it.
TEST(Distribution, DeeplyNestedJsonlIsRefused) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  StatusOr<LengthDistribution> dist =
      parse_jsonl_lengths("{\"length\": 3}\n{\"length\": " + deep + "}\n", "deep.jsonl");
  ASSERT_FALSE(dist.ok());
  EXPECT_EQ(dist.status().code(), StatusCode::kInvalidInput);
  // '{' is level 1 at byte 1; the 64th '[' (byte 12 + 63) opens level 65.
  EXPECT_EQ(dist.status().message(), "deep.jsonl:2: JSON nested deeper than 64 at byte 75");
}

// Files are read with the bounds of core/limits.h: a directory or a device is refused before
// any byte is read (/dev/zero never ends), with the kind of thing it is, and so is a file
// over its format's bound (sparse files here: judged by their size, never read).
TEST(Distribution, FilesAreBoundedBeforeReading) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "cf_dist_bounds_test";
  std::filesystem::create_directories(dir);
  const std::string lengths = (dir / "big.txt").string();
  std::ofstream(lengths) << "5\n";
  std::filesystem::resize_file(lengths, limits::kMaxDatasetFileBytes + 1);
  EXPECT_EQ(load_distribution(lengths).status().message(),
            lengths +
                ": 1073741825 bytes, more than the 1073741824 allowed (1 GiB for a dataset "
                "file, core/limits.h)");
  const std::string yaml = (dir / "big.yaml").string();
  std::ofstream(yaml) << "cdf: [[1, 1]]\n";
  std::filesystem::resize_file(yaml, limits::kMaxTextFileBytes + 1);
  EXPECT_EQ(load_distribution(yaml).status().message(),
            yaml +
                ": 67108865 bytes, more than the 67108864 allowed (64 MiB for a YAML or JSON "
                "input, core/limits.h)");
  std::filesystem::remove_all(dir);
}

TEST(Distribution, NonRegularFilesAreRefused) {
  StatusOr<LengthDistribution> zero = load_distribution("/dev/zero");
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().message(), "/dev/zero: not a regular file (a character device)");
  const std::string dir = ::testing::TempDir();
  StatusOr<LengthDistribution> directory = load_distribution(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find(": not a regular file (a directory)"),
            std::string::npos)
      << directory.status().message();
}

}  // namespace
}  // namespace cf
