// Status / StatusOr and the CF_ASSIGN_OR_RETURN plumbing: codes, exit codes, propagation.
#include "core/status.h"

#include <gtest/gtest.h>

namespace cf {
namespace {

StatusOr<int> half(int x) {
  if (x % 2) return Status::InvalidInput("odd");
  return x / 2;
}

StatusOr<int> quarter(int x) {
  CF_ASSIGN_OR_RETURN(int h, half(x));
  CF_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

TEST(Status, ExitCodes) {
  EXPECT_EQ(Status::Ok().exit_code(), 0);
  EXPECT_EQ(Status::Runtime("x").exit_code(), 1);
  EXPECT_EQ(Status::InvalidInput("x").exit_code(), 2);
}

TEST(StatusOr, PropagatesFirstFailure) {
  ASSERT_TRUE(quarter(12).ok());
  EXPECT_EQ(*quarter(12), 3);
  StatusOr<int> bad = quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
}

TEST(StatusOrDeathTest, ValueOfFailureAborts) {
  StatusOr<int> bad = Status::InvalidInput("no value here");
  EXPECT_DEATH((void)bad.value(), "no value here");
}

}  // namespace
}  // namespace cf

namespace cf {
namespace {

TEST(CheckDeathTest, BareCheckCompilesAndAbortsWithExpression) {
  const int two = 2;
  CF_CHECK(two == 2);
  EXPECT_DEATH(CF_CHECK(two == 3), "CHECK failed: two == 3");
  EXPECT_DEATH(CF_CHECK_EQ(two, 3) << "context", "\\(2 vs 3\\) context");
}

}  // namespace
}  // namespace cf
