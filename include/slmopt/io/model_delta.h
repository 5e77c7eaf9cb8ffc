// Tensor-level deltas between two versions of a model file (GGUF or safetensors), so a device that holds OLD
// downloads only what changed: `slmopt delta OLD NEW -o PATCH`, then `slmopt patch OLD PATCH -o NEW`.
//
// NEW is described as a sequence of pieces whose concatenation is NEW byte for byte. A tensor of NEW whose bytes
// (and length) equal a tensor of OLD — under any name, at any offset — becomes a *copy* piece referring to that
// range of OLD by offset, length and SHA-256; everything else (headers, metadata, padding, changed tensors) is
// *carried* in the patch, adjacent carried bytes merged into one piece. Copy pieces are only ever tensor ranges
// of OLD, so the patch depends on the tensors it reuses, and patch verifies all of them.
//
// Patch file layout, version 1 (all integers little-endian):
//
//   offset 0   "SLMPATCH"           8-byte magic
//              uint32 version       1
//              uint32 flags         0 (reserved; any other value is refused)
//              uint64 old_size      bytes of OLD
//              byte[32] old_sha256  SHA-256 of OLD
//              uint64 new_size      bytes of NEW
//              byte[32] new_sha256  SHA-256 of NEW
//              uint64 piece_count
//   then       piece_count × piece, in NEW's order:
//                uint8 kind = 0 (copy):   uint64 old_offset, uint64 length, byte[32] sha256 of those OLD bytes
//                uint8 kind = 1 (carry):  uint64 length, byte[32] sha256 of the bytes, then the `length` bytes
//   then       nothing (trailing bytes are refused)
//
// A patch is untrusted input: every count and length is checked against the bytes really present (and copy
// ranges against old_size) before it is used, and the pieces' lengths must add up to new_size exactly.
// apply_patch verifies OLD's size and SHA-256, each copied range's SHA-256, each carried blob's SHA-256 and
// finally NEW's SHA-256, writing through a temporary file that is renamed only when everything matched; any
// mismatch is one Error naming the file and what did not match, and nothing is written.
#pragma once

#include <cstdint>
#include <string>

namespace slmopt {

inline constexpr char kPatchMagic[8] = {'S', 'L', 'M', 'P', 'A', 'T', 'C', 'H'};
inline constexpr uint32_t kPatchVersion = 1;

struct DeltaStats {
  uint64_t old_bytes = 0, new_bytes = 0, patch_bytes = 0;
  int64_t tensors = 0;            // tensors of NEW
  int64_t tensors_reused = 0;     // referenced in OLD by hash
  int64_t tensors_carried = 0;    // carried in the patch
  uint64_t reused_bytes = 0, carried_bytes = 0;  // carried_bytes includes headers and padding
  int64_t pieces = 0;
};

// Writes the patch that turns `old_path` into `new_path` (both GGUF or safetensors files, not necessarily the
// same format). Error(Usage) for a path that is neither, Error(BadInput) for a malformed file.
DeltaStats make_delta(const std::string& old_path, const std::string& new_path, const std::string& patch_path);

// Rebuilds NEW from OLD and the patch, verifying every hash; writes nothing on any mismatch (Error(BadInput)).
DeltaStats apply_patch(const std::string& old_path, const std::string& patch_path, const std::string& output_path);

}  // namespace slmopt
