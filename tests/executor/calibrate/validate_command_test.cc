// `chunkflow validate` end to end, short of running the matrix (minutes; scripts/validate.sh
// does): a missing, malformed or invalid table, bad flags and an output folder that cannot
// be made exit 2 naming the file and, for a bad table, the key path; nothing is run.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using nlohmann::json;
using test::CommandResult;
using test::run_chunkflow;
using test::TempDir;

void expect_bad_input(const CommandResult& r, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("verdict"), std::string::npos) << r.out;
}

TEST(ValidateCommand, MissingOrMalformedTableExitsTwo) {
  TempDir dir;
  const std::string out = dir.path() + "/out";
  const std::string missing = dir.path() + "/nowhere.json";
  expect_bad_input(run_chunkflow({"validate", missing, "--out", out}),
                   missing + ": cannot open file: No such file or directory");
  const std::string broken = dir.write("broken.json", "{\"format\": \"chunkflow-calibration\",");
  expect_bad_input(run_chunkflow({"validate", broken, "--out", out}), broken + ": not valid JSON");
  const std::string other = dir.write("other.json", "[1, 2]");
  expect_bad_input(run_chunkflow({"validate", other, "--out", out}),
                   other + ": expected a JSON object");
  EXPECT_EQ(run_chunkflow({"validate"}).exit_code, 2);  // the table is required
}

// A real (--quick) table, each time with one defect: the reader names file and key path.
TEST(ValidateCommand, InvalidTableNamesFileAndKey) {
  TempDir dir;
  const std::string good = dir.path() + "/cal.json";
  const CommandResult cal = run_chunkflow({"calibrate", "--quick", "-q", "-o", good});
  ASSERT_EQ(cal.exit_code, 0) << cal.err;
  std::stringstream text;
  text << std::ifstream(good).rdbuf();
  const json table = json::parse(text.str());
  struct Bad {
    std::string name;
    std::function<void(json&)> edit;
    std::string fragment;
  };
  const std::vector<Bad> cases = {
      {"unknown", [](json& j) { j["machine"]["colour"] = "red"; }, "machine.colour: unknown key"},
      {"type", [](json& j) { j["method"]["repetitions"] = "3"; },
       "method.repetitions: expected an integer, got \"3\""},
      {"grid",
       [](json& j) {
         j["models"][0]["layer_forward"]["x"][1] = j["models"][0]["layer_forward"]["x"][0];
       },
       "models[0].layer_forward.x[1]: the grid must be strictly increasing"},
      {"missing", [](json& j) { j["transport"].erase("p2p"); },
       "transport.p2p: required key is missing"},
  };
  for (const Bad& bad : cases) {
    SCOPED_TRACE(bad.name);
    json j = table;
    bad.edit(j);
    const std::string path = dir.write(bad.name + ".json", j.dump(1));
    expect_bad_input(run_chunkflow({"validate", path, "--out", dir.path() + "/out"}),
                     path + ": " + bad.fragment);
  }

  // A good table, but flags or the output folder are bad: still exit 2, before any run.
  EXPECT_EQ(run_chunkflow({"validate", good, "--runs", "0"}).exit_code, 2);
  EXPECT_EQ(run_chunkflow({"validate", good, "--frobnicate"}).exit_code, 2);
  const std::string file = dir.write("a-file", "x");
  expect_bad_input(run_chunkflow({"validate", good, "--out", file + "/out"}),
                   file + "/out: cannot create the output folder");
}

}  // namespace
}  // namespace cf
