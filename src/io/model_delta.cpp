// Model deltas (layout in io/model_delta.h). The delta side finds each file's tensor byte ranges through the
// format readers (GGUF tensor infos, safetensors data offsets); bytes outside those ranges are simply carried,
// so a tensor the reader had to copy (a misaligned safetensors tensor) costs patch size, never correctness. The
// patch side trusts nothing in the patch: a bounds-checked cursor reads it, and every byte of NEW is hashed
// before the temporary output is renamed into place.
#include "slmopt/io/model_delta.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/core/sha256.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/io/safetensors.h"

namespace slmopt {
namespace {

struct ByteRange {
  uint64_t offset = 0, length = 0;
};

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The tensor data ranges of a GGUF or safetensors file, ascending and non-overlapping (the readers check that).
std::vector<ByteRange> tensor_ranges(const std::string& path, const MappedFile& file) {
  std::vector<ByteRange> ranges;
  if (file.size() >= 4 && std::memcmp(file.data(), "GGUF", 4) == 0) {
    const GgufFile gguf = GgufFile::open(path);
    for (const auto& t : gguf.tensors()) ranges.push_back({gguf.data_offset() + t.offset, t.nbytes});
  } else if (has_suffix(path, ".safetensors")) {
    const SafetensorsFile st = SafetensorsFile::open(path);
    const uint8_t* base = st.mapping().data();
    for (const auto& t : st.tensors()) {
      // Only views into the mapping name a file range (a copied, misaligned tensor is carried as plain bytes).
      if (t.data() >= base && t.data() + t.nbytes() <= base + st.mapping().size())
        ranges.push_back({static_cast<uint64_t>(t.data() - base), t.nbytes()});
    }
  } else {
    throw_error(ErrorKind::Usage, "{}: delta and patch take GGUF files or .safetensors files", path);
  }
  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> kept;  // empty tensors need no piece; overlaps cannot come out of the readers
  for (const auto& r : ranges)
    if (r.length > 0 && (kept.empty() || r.offset >= kept.back().offset + kept.back().length)) kept.push_back(r);
  return kept;
}

void require_file(const std::string& path, const char* role) {
  if (!std::filesystem::is_regular_file(path)) throw_error(ErrorKind::Usage, "{} '{}' is not a file", role, path);
}

// --- writing ------------------------------------------------------------------------------------------------

enum : uint8_t { kCopy = 0, kCarry = 1 };

struct Piece {
  uint8_t kind = kCarry;
  uint64_t old_offset = 0;  // copy
  uint64_t new_offset = 0;  // where the bytes sit in NEW (carry: their source)
  uint64_t length = 0;
  Sha256Digest hash{};
};

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_hash(std::string& out, const Sha256Digest& h) { out.append(reinterpret_cast<const char*>(h.data()), h.size()); }

// --- reading (untrusted) ------------------------------------------------------------------------------------

class PatchReader {
 public:
  PatchReader(std::string path, const uint8_t* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}

  uint64_t remaining() const { return size_ - pos_; }
  uint64_t position() const { return pos_; }
  const uint8_t* take(uint64_t n, const char* what) {
    if (n > remaining())
      throw_error(ErrorKind::BadInput, "{}: truncated patch: {} needs {} bytes at offset {}, {} left", path_, what, n,
                  pos_, remaining());
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8(const char* what) { return *take(1, what); }
  uint32_t u32(const char* what) {
    const uint8_t* p = take(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
    return v;
  }
  uint64_t u64(const char* what) {
    const uint8_t* p = take(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
    return v;
  }
  Sha256Digest hash(const char* what) {
    Sha256Digest h;
    std::memcpy(h.data(), take(32, what), 32);
    return h;
  }

 private:
  std::string path_;
  const uint8_t* data_;
  size_t size_;
  uint64_t pos_ = 0;
};

constexpr uint64_t kHeaderBytes = 8 + 4 + 4 + 8 + 32 + 8 + 32 + 8;
constexpr uint64_t kMinPieceBytes = 1 + 8 + 32;  // a carry piece of zero bytes

}  // namespace

DeltaStats make_delta(const std::string& old_path, const std::string& new_path, const std::string& patch_path) {
  require_file(old_path, "OLD");
  require_file(new_path, "NEW");
  const auto old_file = MappedFile::open(old_path);
  const auto new_file = MappedFile::open(new_path);
  const std::vector<ByteRange> old_ranges = tensor_ranges(old_path, *old_file);
  const std::vector<ByteRange> new_ranges = tensor_ranges(new_path, *new_file);

  // OLD's tensors by (hash, length); the first occurrence wins so the patch is deterministic.
  std::map<std::pair<Sha256Digest, uint64_t>, uint64_t> old_index;
  for (const auto& r : old_ranges)
    old_index.emplace(std::make_pair(sha256(old_file->data() + r.offset, r.length), r.length), r.offset);

  DeltaStats stats;
  stats.old_bytes = old_file->size();
  stats.new_bytes = new_file->size();
  stats.tensors = static_cast<int64_t>(new_ranges.size());
  std::vector<Piece> pieces;
  const auto carry = [&](uint64_t from, uint64_t to) {
    if (to <= from) return;
    if (!pieces.empty() && pieces.back().kind == kCarry) pieces.back().length += to - from;
    else pieces.push_back({kCarry, 0, from, to - from, {}});
    stats.carried_bytes += to - from;
  };
  uint64_t cursor = 0;
  for (const auto& r : new_ranges) {
    carry(cursor, r.offset);
    const Sha256Digest h = sha256(new_file->data() + r.offset, r.length);
    auto it = old_index.find({h, r.length});
    if (it != old_index.end()) {
      pieces.push_back({kCopy, it->second, r.offset, r.length, h});
      ++stats.tensors_reused;
      stats.reused_bytes += r.length;
    } else {
      carry(r.offset, r.offset + r.length);
      ++stats.tensors_carried;
    }
    cursor = r.offset + r.length;
  }
  carry(cursor, new_file->size());
  for (auto& p : pieces)
    if (p.kind == kCarry) p.hash = sha256(new_file->data() + p.new_offset, p.length);
  stats.pieces = static_cast<int64_t>(pieces.size());

  std::string header(kPatchMagic, sizeof kPatchMagic);
  put_u32(header, kPatchVersion);
  put_u32(header, 0);
  put_u64(header, old_file->size());
  put_hash(header, sha256(old_file->data(), old_file->size()));
  put_u64(header, new_file->size());
  put_hash(header, sha256(new_file->data(), new_file->size()));
  put_u64(header, pieces.size());
  AtomicFile out(patch_path);
  out.write(header.data(), header.size());
  for (const auto& p : pieces) {
    std::string entry(1, static_cast<char>(p.kind));
    if (p.kind == kCopy) put_u64(entry, p.old_offset);
    put_u64(entry, p.length);
    put_hash(entry, p.hash);
    out.write(entry.data(), entry.size());
    if (p.kind == kCarry) out.write(new_file->data() + p.new_offset, p.length);
  }
  stats.patch_bytes = out.position();
  out.commit();
  return stats;
}

DeltaStats apply_patch(const std::string& old_path, const std::string& patch_path, const std::string& output_path) {
  require_file(old_path, "OLD");
  require_file(patch_path, "PATCH");
  const auto old_file = MappedFile::open(old_path);
  const auto patch_file = MappedFile::open(patch_path);
  PatchReader in(patch_path, patch_file->data(), patch_file->size());

  if (patch_file->size() < kHeaderBytes || std::memcmp(patch_file->data(), kPatchMagic, sizeof kPatchMagic) != 0)
    throw_error(ErrorKind::BadInput, "{}: not an slmopt patch (no SLMPATCH header)", patch_path);
  in.take(sizeof kPatchMagic, "magic");
  const uint32_t version = in.u32("version");
  if (version != kPatchVersion)
    throw_error(ErrorKind::BadInput, "{}: patch format version {} (this slmopt reads version {})", patch_path, version,
                kPatchVersion);
  if (const uint32_t flags = in.u32("flags"); flags != 0)
    throw_error(ErrorKind::BadInput, "{}: unknown patch flags {:#x}", patch_path, flags);
  const uint64_t old_size = in.u64("old size");
  const Sha256Digest old_hash = in.hash("old sha256");
  const uint64_t new_size = in.u64("new size");
  const Sha256Digest new_hash = in.hash("new sha256");
  const uint64_t count = in.u64("piece count");
  if (count > in.remaining() / kMinPieceBytes)
    throw_error(ErrorKind::BadInput, "{}: piece count {} does not fit in the {} bytes that follow", patch_path, count,
                in.remaining());

  // OLD must be the very file the patch was made from.
  if (old_file->size() != old_size)
    throw_error(ErrorKind::BadInput, "{}: OLD has {} bytes, the patch {} was made from a file of {} bytes", old_path,
                old_file->size(), patch_path, old_size);
  if (sha256(old_file->data(), old_file->size()) != old_hash)
    throw_error(ErrorKind::BadInput, "{}: OLD's sha256 {} is not the {} that patch {} expects", old_path,
                sha256_hex(old_file->data(), old_file->size()), to_hex(old_hash), patch_path);

  DeltaStats stats;
  stats.old_bytes = old_size;
  stats.new_bytes = new_size;
  stats.patch_bytes = patch_file->size();
  stats.pieces = static_cast<int64_t>(count);
  AtomicFile out(output_path);  // removed again unless every check below passes
  Sha256 whole;
  uint64_t written = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t at = in.position();
    const uint8_t kind = in.u8("piece kind");
    if (kind != kCopy && kind != kCarry)
      throw_error(ErrorKind::BadInput, "{}: piece {} at offset {}: unknown kind {}", patch_path, i, at, kind);
    const uint64_t old_offset = kind == kCopy ? in.u64("copy offset") : 0;
    const uint64_t length = in.u64("piece length");
    const Sha256Digest hash = in.hash("piece sha256");
    if (length > new_size - written)
      throw_error(ErrorKind::BadInput, "{}: piece {} ({} bytes) runs past NEW's {} bytes", patch_path, i, length,
                  new_size);
    const uint8_t* bytes = nullptr;
    if (kind == kCopy) {
      if (old_offset > old_size || length > old_size - old_offset)
        throw_error(ErrorKind::BadInput, "{}: piece {} copies [{}, +{}) outside OLD's {} bytes", patch_path, i,
                    old_offset, length, old_size);
      bytes = old_file->data() + old_offset;
      ++stats.tensors_reused;
      stats.reused_bytes += length;
    } else {
      bytes = in.take(length, "carried bytes");
      stats.carried_bytes += length;
    }
    if (sha256(bytes, length) != hash)
      throw_error(ErrorKind::BadInput, "{}: piece {} ({} {} bytes at NEW offset {}): sha256 mismatch, {} is corrupt",
                  patch_path, i, kind == kCopy ? "copied" : "carried", length, written,
                  kind == kCopy ? old_path + " or the patch" : std::string("the patch"));
    whole.update(bytes, length);
    out.write(bytes, length);
    written += length;
  }
  if (in.remaining() != 0)
    throw_error(ErrorKind::BadInput, "{}: {} unexpected bytes after the last piece", patch_path, in.remaining());
  if (written != new_size)
    throw_error(ErrorKind::BadInput, "{}: the pieces make {} bytes, NEW has {}", patch_path, written, new_size);
  if (whole.digest() != new_hash)
    throw_error(ErrorKind::BadInput, "{}: the rebuilt file's sha256 does not match NEW's {}", patch_path,
                to_hex(new_hash));
  out.commit();
  return stats;
}

}  // namespace slmopt
