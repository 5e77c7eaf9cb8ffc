// `slmopt patch` (io/model_delta.h): OLD (part 0) and PATCH (part 1), applied as the CLI applies a downloaded
// patch. Every piece of a patch is checked against a SHA-256 a mutation cannot forge, so before the reader runs,
// the harness writes the right digests into the patch wherever its layout lets it find them (OLD's, each piece's,
// NEW's): the mutations then reach the size, count and range checks of every piece and the writing of NEW,
// not only the first digest comparison. The walk below is lenient on purpose — it stops where the layout stops
// making sense and leaves the rest for the reader to refuse.
#include <cstring>
#include <string>

#include "fuzz_target.h"
#include "slmopt/core/sha256.h"
#include "slmopt/io/model_delta.h"

using namespace slmopt;

namespace {

// The layout of include/slmopt/io/model_delta.h, version 1.
constexpr size_t kOldHashAt = 8 + 4 + 4 + 8;        // magic, version, flags, old_size
constexpr size_t kNewHashAt = kOldHashAt + 32 + 8;  // then old_sha256, new_size
constexpr size_t kPiecesAt = kNewHashAt + 32 + 8;   // then new_sha256, piece_count

uint64_t u64_at(const std::string& bytes, size_t at) {
  uint64_t v = 0;
  std::memcpy(&v, bytes.data() + at, 8);  // little-endian host, as the format
  return v;
}

void put_digest(std::string& bytes, size_t at, const Sha256Digest& digest) {
  std::memcpy(bytes.data() + at, digest.data(), digest.size());
}

// Writes the digests a consistent patch of `old` would carry into `patch`, as far as its layout goes.
void fix_digests(const std::string& old, std::string& patch) {
  if (patch.size() < kPiecesAt) return;
  put_digest(patch, kOldHashAt, sha256(old.data(), old.size()));
  const uint64_t count = u64_at(patch, kPiecesAt - 8);
  Sha256 whole;
  size_t at = kPiecesAt;
  for (uint64_t i = 0; i < count && at < patch.size(); ++i) {
    const uint8_t kind = static_cast<uint8_t>(patch[at]);
    const size_t fields = kind == 0 ? 1 + 8 + 8 : 1 + 8;
    if ((kind != 0 && kind != 1) || patch.size() - at < fields + 32) return;
    const uint64_t length = u64_at(patch, at + fields - 8);
    const char* bytes = nullptr;
    if (kind == 0) {
      const uint64_t offset = u64_at(patch, at + 1);
      if (offset > old.size() || length > old.size() - offset) return;
      bytes = old.data() + offset;
    } else {
      if (length > patch.size() - at - fields - 32) return;
      bytes = patch.data() + at + fields + 32;
    }
    put_digest(patch, at + fields, sha256(bytes, length));
    whole.update(bytes, length);
    at += fields + 32 + (kind == 1 ? length : 0);
  }
  put_digest(patch, kNewHashAt, whole.digest());
}

}  // namespace

SLMOPT_FUZZ_TARGET(patch) {
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), 2);
  const std::string old(parts[0]);
  std::string patch(parts[1]);
  fix_digests(old, patch);
  const std::string old_path = fuzz::write_scratch("old.gguf", old);
  const std::string patch_path = fuzz::write_scratch("update.slmpatch", patch);
  fuzz::expect_clean_error([&] { apply_patch(old_path, patch_path, fuzz::scratch_dir() + "/new.gguf"); });
  return 0;
}
