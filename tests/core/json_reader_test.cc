// The strict JSON reader: typed reads, missing and unknown keys, wrong types, nested objects
// and arrays, and malformed text, each an InvalidInput naming the origin and the key path.
#include "core/json_reader.h"

#include <gtest/gtest.h>

#include <string>

namespace cf {
namespace {

using nlohmann::json;

json parsed(const std::string& text) {
  StatusOr<json> j = parse_json(text, "t.json");
  EXPECT_TRUE(j.ok()) << j.status().message();
  return j.ok() ? *j : json();
}

void expect_error(const Status& s, const std::string& fragment) {
  ASSERT_FALSE(s.ok()) << "expected: " << fragment;
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
}

TEST(JsonReader, ReadsTypedValues) {
  const json j = parsed(R"({"i": -17, "d": 2.5, "n": 81, "b": true, "s": "x", "big": 3000000000})");
  JsonReader in(j, "t.json", "");
  ASSERT_TRUE(in.check_object().ok());
  int64_t i = 0, big = 0;
  int n = 0;
  double d = 0, n_as_double = 0;
  bool b = false;
  std::string s;
  ASSERT_TRUE(in.get("i", &i).ok());
  ASSERT_TRUE(in.get("d", &d).ok());
  ASSERT_TRUE(in.get("n", &n).ok());
  ASSERT_TRUE(in.get("n", &n_as_double).ok());  // an integer is a number
  ASSERT_TRUE(in.get("b", &b).ok());
  ASSERT_TRUE(in.get("s", &s).ok());
  ASSERT_TRUE(in.get("big", &big).ok());
  EXPECT_EQ(i, -17);
  EXPECT_EQ(d, 2.5);
  EXPECT_EQ(n, 81);
  EXPECT_EQ(n_as_double, 81.0);
  EXPECT_TRUE(b);
  EXPECT_EQ(s, "x");
  EXPECT_EQ(big, 3000000000);
  EXPECT_TRUE(in.finish().ok());
}

TEST(JsonReader, ErrorsNameOriginAndKeyPath) {
  const json j = parsed(R"({"a": {"b": {"c": "1.5", "x": 1}, "list": [1, {"k": 2}]}, "top": 1})");
  JsonReader top(j, "t.json", "");
  StatusOr<JsonReader> a = top.child("a");
  ASSERT_TRUE(a.ok()) << a.status().message();
  StatusOr<JsonReader> b = a->child("b");
  ASSERT_TRUE(b.ok());
  int64_t c = 0;
  expect_error(b->get("c", &c), "t.json: a.b.c: expected an integer, got \"1.5\"");
  double missing = 0;
  expect_error(b->get("nope", &missing), "t.json: a.b.nope: required key is missing");
  expect_error(b->finish(), "t.json: a.b.x: unknown key");
  StatusOr<const json*> list = a->array("list");
  ASSERT_TRUE(list.ok());
  JsonReader element((**list)[0], "t.json", a->child_path("list[0]"));
  expect_error(element.check_object(), "t.json: a.list[0]: expected a JSON object, got 1");
  expect_error(a->array("b").status(), "t.json: a.b: expected a JSON array");
  expect_error(top.child("top").status(), "t.json: top: expected a JSON object, got 1");
  EXPECT_TRUE(top.finish().ok());  // a and top were read
}

TEST(JsonReader, IntegersAreRangeChecked) {
  const json j = parsed(R"({"wide": 4294967296, "huge": 18446744073709551615, "neg": -1.0})");
  JsonReader in(j, "t.json", "root");
  int narrow = 0;
  int64_t wide = 0;
  expect_error(in.get("wide", &narrow), "t.json: root.wide: integer out of range: 4294967296");
  expect_error(in.get("huge", &wide), "t.json: root.huge: expected an integer");
  expect_error(in.get("neg", &wide), "t.json: root.neg: expected an integer, got -1.0");
}

TEST(JsonReader, MalformedTextNamesWhereItBroke) {
  StatusOr<json> bad = parse_json("{\"a\": 1,\n \"b\": }", "broken.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(bad.status().message().find("broken.json: not valid JSON:"), std::string::npos);
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos) << bad.status().message();
  StatusOr<json> trailing = parse_json("{} x", "t.json");
  ASSERT_FALSE(trailing.ok());
  EXPECT_NE(trailing.status().message().find("t.json: not valid JSON:"), std::string::npos);
  EXPECT_FALSE(parse_json("", "empty.json").ok());
  EXPECT_TRUE(parse_json(" [1, 2] ", "t.json").ok());
}

// Nesting is bounded (limits::kMaxJsonDepth = 64) before nlohmann parses: 200,000 nested '['
// overflowed the stack in the recursive dump of an error message. Brackets inside strings do
// not count, and 64 levels are read.
TEST(JsonReader, NestingDeeperThan64IsRefusedAtItsByte) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  StatusOr<json> refused = parse_json(deep, "deep.json");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(refused.status().message(), "deep.json: JSON nested deeper than 64 at byte 65");
  const std::string objects =
      R"({"a": {"b": )" + std::string(63, '[') + std::string(63, ']') + "}}";
  EXPECT_EQ(parse_json(objects, "o.json").status().message(),
            "o.json: JSON nested deeper than 64 at byte 75");  // '{' '{' then the 63rd '['
  const std::string at_bound = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(parse_json(at_bound, "t.json").ok());
  const std::string in_strings = R"({"s": ")" + std::string(1000, '[') + R"(\"[{"})";
  StatusOr<json> strings = parse_json(in_strings, "t.json");
  ASSERT_TRUE(strings.ok()) << strings.status().message();
  EXPECT_EQ((*strings)["s"].get<std::string>().size(), 1003u);
  // Unbalanced text is the parser's to refuse, not the scan's.
  EXPECT_NE(parse_json("]]]" + std::string(64, '['), "u.json")
                .status()
                .message()
                .find("u.json: not valid JSON:"),
            std::string::npos);
}

// A number no double holds (1e999) was nlohmann's out_of_range exception (exit 134 where it
// was not caught); it is an error naming the key path of the number.
TEST(JsonReader, NumberOutOfRangeNamesItsKey) {
  EXPECT_EQ(parse_json(R"({"a": 1, "b": {"c": [5, -1e999]}})", "t.json").status().message(),
            "t.json: b.c[1]: number out of range: -1e999");
  EXPECT_EQ(parse_json(R"([{"x": 1}, [1e999]])", "t.json").status().message(),
            "t.json: [1][0]: number out of range: 1e999");
  EXPECT_EQ(parse_json("1e400", "t.json").status().message(), "t.json: number out of range: 1e400");
  // Integers past 64 bits are doubles, not errors.
  StatusOr<json> wide = parse_json("123456789012345678901234567890", "t.json");
  ASSERT_TRUE(wide.ok());
  EXPECT_TRUE(wide->is_number_float());
}

}  // namespace
}  // namespace cf
