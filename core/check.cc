// Out-of-line part of CF_CHECK: print and abort.
#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace cf::internal {

CheckFailure::CheckFailure(const char* expr, const char* file, int line) {
  stream_ << "CHECK failed: " << expr << " at " << file << ":" << line << " ";
}

CheckFailure::~CheckFailure() {
  std::fprintf(stderr, "%s\n", stream_.str().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace cf::internal
