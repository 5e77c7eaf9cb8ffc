// Private to core: which files this process has mapped (MappedFile), so that AtomicFile can refuse to replace one.
#pragma once

#include <sys/types.h>

namespace slmopt {

// True when a live MappedFile maps the file with this device and inode (the input model being read).
bool is_mapped_file(dev_t device, ino_t inode);

}  // namespace slmopt
