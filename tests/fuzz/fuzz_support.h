// What every fuzz target of tests/fuzz/ holds a reader to: any input comes back as a value or
// as a refusal (InvalidInput whose message starts with the input's name). A CF_CHECK abort,
// an uncaught exception, a sanitizer report, a leak or a timeout is a finding. Not a library:
// included by the targets alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/check.h"
#include "core/status.h"

namespace cf::fuzz {

inline std::string as_text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// A refusal as STYLE.md §9 has them: bad input, and a message that names where it is.
inline void expect_refusal(const Status& status, const std::string& origin) {
  CF_CHECK(status.code() == StatusCode::kInvalidInput)
      << "a refusal that is not InvalidInput: " << status.message();
  CF_CHECK(status.message().rfind(origin, 0) == 0)
      << "a refusal that does not start with \"" << origin << "\": " << status.message();
}

}  // namespace cf::fuzz
