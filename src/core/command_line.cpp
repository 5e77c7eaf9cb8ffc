#include "slmopt/core/command_line.h"

namespace slmopt {
namespace {

std::string& recorded() {
  static std::string line;
  return line;
}

// POSIX-shell quoting: plain words stay as they are, anything else goes in single quotes ('\'' for a quote).
std::string quoted(const std::string& arg) {
  const bool plain = !arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                           "0123456789-_./=:,+@%") == std::string::npos;
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

void set_command_line(int argc, const char* const* argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i == 0) arg = arg.substr(arg.find_last_of('/') + 1);  // the program's name, not where it was built
    line += (i ? " " : "") + quoted(arg);
  }
  recorded() = line;
}

const std::string& command_line() { return recorded(); }

}  // namespace slmopt
