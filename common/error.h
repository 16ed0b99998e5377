// Error and Result<T>: the failure policy of crtools host code.
//
// A function that can fail returns Result<T>. Its Error carries the pid it
// concerns (0 if none), the errno (0 if none), a one-line message and an
// optional remedy. Functions whose name ends in _or_die print the error and
// exit instead; nothing else exits.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include <sys/types.h>

namespace cr {

struct Error {
  std::string message;   // what failed, naming file/offset/fd/address where known
  int err = 0;           // errno, 0 if not a system error
  pid_t pid = 0;         // task concerned, 0 if none
  std::string remedy;    // what the user can do, may be empty

  // "pid 812: message: strerror (remedy)"
  std::string str() const;
};

// Builders. printf-style message.
Error make_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
Error make_errno(int err, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
Error make_pid_error(pid_t pid, int err, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}
  Result(Error e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return e_; }
  Error&& error() && { return std::move(e_); }

 private:
  Error e_;
  bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() { return Status(); }

}  // namespace cr

// TRY(expr): evaluate a Result; on error return the error from the enclosing
// function; otherwise yield the value (GNU statement expression).
#define CR_CAT2(a, b) a##b
#define CR_CAT(a, b) CR_CAT2(a, b)
#define TRY(expr)                                          \
  ({                                                       \
    auto CR_CAT(_r, __LINE__) = (expr);                    \
    if (!CR_CAT(_r, __LINE__).ok())                        \
      return std::move(CR_CAT(_r, __LINE__)).error();      \
    std::move(CR_CAT(_r, __LINE__)).value();               \
  })
#define TRY_STATUS(expr)                                   \
  do {                                                     \
    auto CR_CAT(_s, __LINE__) = (expr);                    \
    if (!CR_CAT(_s, __LINE__).ok())                        \
      return std::move(CR_CAT(_s, __LINE__)).error();      \
  } while (0)
