// Helpers shared by the models/ input tests: edit one line of a fixture, and expect an
// InvalidInput status whose message carries every given piece (file:line, key, reason).
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "core/status.h"

namespace cf::test {

// `text` with the first `from` replaced by `to` (the test fails when `from` is absent).
inline std::string replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

inline void expect_invalid(const Status& status, std::initializer_list<std::string> pieces) {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kInvalidInput);
  for (const std::string& piece : pieces) {
    EXPECT_NE(status.message().find(piece), std::string::npos)
        << "\"" << piece << "\" not in: " << status.message();
  }
}

}  // namespace cf::test
