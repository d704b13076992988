#pragma once
// A value or an error, for code on the data plane, which reports failures instead of
// throwing (see STYLE.md).

#include <string>
#include <utility>
#include <variant>

namespace imapav {

struct Error {
  int code = 0;      // domain specific: an ICAP status, an errno, a cl_error_t ...
  std::string text;  // for operators: says what went wrong, never contains message content
};

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace imapav
