// Status and StatusOr: the one mechanism for bad input (STYLE.md §9). A failed Status
// carries a message that already names the file, line, column and key path.
// Not for broken invariants (use CF_CHECK) nor infeasible configurations (a normal result).
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cf {

enum class StatusCode { kOk = 0, kInvalidInput = 2, kRuntime = 1 };

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidInput(std::string message) {
    return Status(StatusCode::kInvalidInput, std::move(message));
  }
  static Status Runtime(std::string message) {
    return Status(StatusCode::kRuntime, std::move(message));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The process exit code a CLI uses for this status: 0 ok, 1 runtime, 2 bad input.
  int exit_code() const { return static_cast<int>(code_); }
  // The same status with "PREFIX: " before its message (ok stays ok): the file or key an
  // outer reader adds to an inner error.
  Status prefixed(const std::string& prefix) const {
    return ok() ? *this : Status(code_, prefix + ": " + message_);
  }

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status::Runtime("StatusOr built from an ok Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const T& value() const& { return *checked(); }
  T& value() & { return *checked(); }
  T&& value() && { return std::move(*checked()); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  const T* checked() const;
  T* checked();
  std::optional<T> value_;
  Status status_;
};

}  // namespace cf

#include "core/check.h"

namespace cf {
template <typename T>
const T* StatusOr<T>::checked() const {
  CF_CHECK(value_.has_value()) << "value() of a failed StatusOr: " << status_.message();
  return &*value_;
}
template <typename T>
T* StatusOr<T>::checked() {
  CF_CHECK(value_.has_value()) << "value() of a failed StatusOr: " << status_.message();
  return &*value_;
}
}  // namespace cf

#define CF_STATUS_CONCAT_INNER(a, b) a##b
#define CF_STATUS_CONCAT(a, b) CF_STATUS_CONCAT_INNER(a, b)

// Returns the failed Status of `expr` from the enclosing function.
#define CF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::cf::Status cf_status_ = (expr);        \
    if (!cf_status_.ok()) return cf_status_; \
  } while (0)

// `CF_ASSIGN_OR_RETURN(auto x, f());` declares x from a StatusOr or returns its Status.
#define CF_ASSIGN_OR_RETURN(lhs, expr) \
  CF_ASSIGN_OR_RETURN_IMPL(CF_STATUS_CONCAT(cf_statusor_, __LINE__), lhs, expr)
#define CF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
