// slmopt's one exception type. The library throws it with a category and the thing at fault (file, tensor,
// option); the driver prints error.what() as one line and exits with exit_code(category).
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace slmopt {

enum class ErrorKind {
  Usage,        // a bad command-line option or combination
  BadInput,     // a malformed or inconsistent input file
  Unsupported,  // a valid input slmopt does not handle (architecture, dtype, op)
  Io,           // the operating system refused (missing file, permission, disk full)
  Gate,         // an accuracy gate (--max-ppl-increase, --max-kl) was exceeded
  Internal,     // a bug in slmopt
};

// Exit codes are part of the CLI contract: scripts branch on them.
int exit_code(ErrorKind kind);
const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Convenience: throw_error(ErrorKind::BadInput, "{}: tensor '{}' ...", path, name)
template <typename... Args>
[[noreturn]] void throw_error(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(kind, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace slmopt
