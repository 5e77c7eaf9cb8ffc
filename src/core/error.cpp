#include "slmopt/core/error.h"

namespace slmopt {

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage: return 2;
    case ErrorKind::BadInput: return 3;
    case ErrorKind::Unsupported: return 4;
    case ErrorKind::Io: return 5;
    case ErrorKind::Gate: return 6;
    case ErrorKind::Internal: return 70;
  }
  return 70;
}

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage: return "usage";
    case ErrorKind::BadInput: return "bad input";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::Io: return "i/o";
    case ErrorKind::Gate: return "accuracy gate";
    case ErrorKind::Internal: return "internal";
  }
  return "internal";
}

}  // namespace slmopt
