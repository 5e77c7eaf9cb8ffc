// The command line this process was started with, kept so that reports can say exactly what produced them.
// The driver records it once at start-up; library code only reads it.
#pragma once

#include <string>

namespace slmopt {

// Records argv, shell-quoted (arguments with spaces or quotes are single-quoted) and joined by spaces.
void set_command_line(int argc, const char* const* argv);
// The recorded line, or "" when none was recorded (library use, tests).
const std::string& command_line();

}  // namespace slmopt
