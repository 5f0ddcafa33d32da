// Out-of-line part of CF_CHECK: print and abort.
#include "core/check.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace cf {
namespace {

std::string& check_failure_context() {
  static std::string context;
  return context;
}

}  // namespace

void set_check_failure_context(std::string context) {
  check_failure_context() = std::move(context);
}

}  // namespace cf

namespace cf::internal {

CheckFailure::CheckFailure(const char* expr, const char* file, int line) {
  if (!check_failure_context().empty()) stream_ << check_failure_context() << ": ";
  stream_ << "CHECK failed: " << expr << " at " << file << ":" << line << " ";
}

CheckFailure::~CheckFailure() {
  std::fprintf(stderr, "%s\n", stream_.str().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace cf::internal
