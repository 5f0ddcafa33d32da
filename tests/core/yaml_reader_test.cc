// The strict YAML reader: unknown keys, wrong types, ranges and choices are errors that
// name file:line:column and the dotted key path.
#include "core/yaml_reader.h"

#include <gtest/gtest.h>

namespace cf {
namespace {

YamlMap open_text(const std::string& text) {
  StatusOr<YamlDocument> doc = parse_yaml_text(text, "t.yaml");
  EXPECT_TRUE(doc.ok()) << doc.status().message();
  StatusOr<YamlMap> map = YamlMap::open(doc->root, "t.yaml", "");
  EXPECT_TRUE(map.ok());
  return *std::move(map);
}

TEST(YamlReader, ReadsTypedValuesAndDefaults) {
  YamlMap map = open_text("a: 3\nb: 2.5\nc: true\nd: hello\ne: [1, 2, 3]\nf: 1e6\n");
  int64_t a = 0, f = 0, missing = 42;
  double b = 0;
  bool c = false;
  std::string d;
  std::vector<int64_t> e;
  ASSERT_TRUE(map.get("a", &a).ok());
  ASSERT_TRUE(map.get("b", &b).ok());
  ASSERT_TRUE(map.get("c", &c).ok());
  ASSERT_TRUE(map.get("d", &d).ok());
  ASSERT_TRUE(map.get("e", &e).ok());
  ASSERT_TRUE(map.get("f", &f).ok());
  ASSERT_TRUE(map.get("zzz", &missing).ok());
  EXPECT_EQ(a, 3);
  EXPECT_EQ(b, 2.5);
  EXPECT_TRUE(c);
  EXPECT_EQ(d, "hello");
  EXPECT_EQ(e, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(f, 1000000);
  EXPECT_EQ(missing, 42);
  EXPECT_TRUE(map.finish().ok());
}

TEST(YamlReader, UnknownKeyNamesLineColumnAndPath) {
  StatusOr<YamlDocument> doc = parse_yaml_text("outer:\n  good: 1\n  bda: 2\n", "t.yaml");
  ASSERT_TRUE(doc.ok());
  StatusOr<YamlMap> root = YamlMap::open(doc->root, "t.yaml", "");
  StatusOr<YamlMap> outer = root->child("outer");
  ASSERT_TRUE(outer.ok());
  int64_t good = 0;
  ASSERT_TRUE(outer->get("good", &good).ok());
  Status s = outer->finish();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "t.yaml:3:3: outer.bda: unknown key");
  EXPECT_EQ(s.exit_code(), 2);
}

TEST(YamlReader, WrongTypeAndFractionalInteger) {
  YamlMap map = open_text("n: twelve\nm: 2.5\nl: [1, x]\n");
  int64_t n = 0, m = 0;
  std::vector<int64_t> l;
  Status s = map.get("n", &n);
  EXPECT_EQ(s.message(), "t.yaml:1:4: n: expected an integer, got \"twelve\"");
  s = map.get("m", &m);
  EXPECT_EQ(s.message(), "t.yaml:2:4: m: expected an integer, got \"2.5\"");
  s = map.get("l", &l);
  EXPECT_EQ(s.message(), "t.yaml:3:8: l[1]: expected an integer, got \"x\"");
}

TEST(YamlReader, ChoicesRangesAndMissing) {
  YamlMap map = open_text("kind: blue\nsize: -3\n");
  std::string kind = "red";
  Status s = map.get_choice("kind", {"red", "green"}, &kind);
  EXPECT_EQ(s.message(), "t.yaml:1:7: kind: must be one of red | green, got \"blue\"");
  int64_t size = 0;
  ASSERT_TRUE(map.get("size", &size).ok());
  s = map.check_positive("size", double(size));
  EXPECT_EQ(s.message(), "t.yaml:2:7: size: must be positive, got -3");
  std::string name;
  s = map.require("name", &name);
  EXPECT_NE(s.message().find("name: required key is missing"), std::string::npos) << s.message();
}

TEST(YamlReader, SyntaxErrorNamesPosition) {
  StatusOr<YamlDocument> doc = parse_yaml_text("a: [1, 2\nb: 3\n", "bad.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().message().rfind("bad.yaml:", 0), 0u) << doc.status().message();
  EXPECT_NE(doc.status().message().find("not valid YAML"), std::string::npos);
}

TEST(YamlReader, NonMapSectionIsAnError) {
  StatusOr<YamlDocument> doc = parse_yaml_text("parallel: 4\n", "t.yaml");
  StatusOr<YamlMap> root = YamlMap::open(doc->root, "t.yaml", "");
  StatusOr<YamlMap> child = root->child("parallel");
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().message(), "t.yaml:1:11: parallel: expected a map, got \"4\"");
}

// yaml-cpp stops deep nesting itself (its DepthGuard) with the message "bad file"; the
// error says what happened.
TEST(YamlReader, DeepNestingIsNamed) {
  const std::string deep = "a: " + std::string(200000, '[') + std::string(200000, ']') + "\n";
  StatusOr<YamlDocument> doc = parse_yaml_text(deep, "deep.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(doc.status().message().find("deep.yaml:1:"), std::string::npos);
  EXPECT_NE(doc.status().message().find("not valid YAML: nested too deeply"), std::string::npos)
      << doc.status().message();
}

}  // namespace
}  // namespace cf
