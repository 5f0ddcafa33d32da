// CF_CHECK: aborts on a broken invariant, printing the expression, file:line and any
// context streamed after it. For programmer errors only; bad input returns a Status.
#pragma once

#include <sstream>
#include <string>

namespace cf {

// Names this process in every CHECK failure message: "rank 3" under MPI prints
// "rank 3: CHECK failed: …", so a launcher's merged output says which rank failed. Set once,
// before any thread that may fail a CHECK starts; empty (the default) prints no prefix.
void set_check_failure_context(std::string context);

}  // namespace cf

namespace cf::internal {

class CheckFailure {
 public:
  CheckFailure(const char* expr, const char* file, int line);
  [[noreturn]] ~CheckFailure();
  template <typename T>
  CheckFailure& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

// Lets `CF_CHECK(x) << ...` be an expression of type void in both branches.
// The rvalue overload serves a bare `CF_CHECK(x);` with nothing streamed after it.
struct Voidify {
  void operator&(CheckFailure&) {}
  void operator&(CheckFailure&&) {}
};

}  // namespace cf::internal

#define CF_CHECK(cond) \
  (cond) ? (void)0     \
         : ::cf::internal::Voidify() & ::cf::internal::CheckFailure(#cond, __FILE__, __LINE__)

#define CF_CHECK_EQ(a, b) CF_CHECK((a) == (b)) << "(" << (a) << " vs " << (b) << ") "
#define CF_CHECK_LE(a, b) CF_CHECK((a) <= (b)) << "(" << (a) << " vs " << (b) << ") "
#define CF_CHECK_LT(a, b) CF_CHECK((a) < (b)) << "(" << (a) << " vs " << (b) << ") "
#define CF_CHECK_GE(a, b) CF_CHECK((a) >= (b)) << "(" << (a) << " vs " << (b) << ") "
#define CF_CHECK_GT(a, b) CF_CHECK((a) > (b)) << "(" << (a) << " vs " << (b) << ") "
