// safetensors reading: one file (SafetensorsFile) and a checkpoint folder (single file or index + shards).
// Every number in the header is untrusted: sizes are computed with overflow checks and compared with the
// mapped length before any pointer is formed, so a malformed file ends in an Error, never in a wild read.
#include "slmopt/io/safetensors.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "json_strict.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"

namespace slmopt {
namespace {

using nlohmann::json;

// Headers larger than this are refused before parsing (the reference implementation uses the same bound).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct DTypeName {
  DType dtype;
  std::string_view name;
};
constexpr std::array<DTypeName, 6> kHandledDTypes = {{
    {DType::F32, "F32"}, {DType::F16, "F16"}, {DType::BF16, "BF16"},
    {DType::I8, "I8"},   {DType::I32, "I32"}, {DType::I64, "I64"},
}};
// Valid safetensors dtypes that slmopt does not handle: refused as Unsupported rather than as malformed.
constexpr std::array<std::string_view, 15> kOtherKnownDTypes = {
    "BOOL", "U8", "I16", "U16", "U32", "U64", "F64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
    "C64", "F8_E4M3FNUZ"};

// A parsed header entry before it becomes a Tensor.
struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Reads a non-negative integer that fits in int64 (JSON floats, negatives and huge values are refused).
bool as_count(const json& value, uint64_t& out) {
  if (!value.is_number_unsigned()) {
    if (value.is_number_integer() && value.get<int64_t>() >= 0) {
      out = static_cast<uint64_t>(value.get<int64_t>());
      return true;
    }
    return false;
  }
  out = value.get<uint64_t>();
  return out <= static_cast<uint64_t>(INT64_MAX);
}

Entry parse_entry(const std::string& path, const std::string& name, const json& value, uint64_t data_size) {
  auto fail = [&](const std::string& why) {
    throw_error(ErrorKind::BadInput, "{}: tensor '{}': {}", path, name, why);
  };
  if (!value.is_object()) fail("header entry is not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!value.contains(field)) fail(fmt::format("header entry has no '{}'", field));

  Entry e;
  e.name = name;
  const json& dtype = value["dtype"];
  if (!dtype.is_string()) fail("'dtype' is not a string");
  const std::string dtype_str = dtype.get<std::string>();
  if (auto d = dtype_from_safetensors(dtype_str)) {
    e.dtype = *d;
  } else if (std::find(kOtherKnownDTypes.begin(), kOtherKnownDTypes.end(), dtype_str) != kOtherKnownDTypes.end()) {
    throw_error(ErrorKind::Unsupported, "{}: tensor '{}': dtype {} is not supported (slmopt reads F32, F16, BF16, I8, "
                "I32, I64)", path, name, dtype_str);
  } else {
    fail(fmt::format("unknown dtype '{}'", dtype_str));
  }

  const json& shape = value["shape"];
  if (!shape.is_array()) fail("'shape' is not an array");
  // The product of the dimensions (zeros counted as ones) must fit in int64 so that no later size computation
  // on this shape can overflow, even for an empty tensor.
  uint64_t guard = 1, elements = 1;
  for (const json& d : shape) {
    uint64_t dim = 0;
    if (!as_count(d, dim)) fail(fmt::format("shape {} has an entry that is not a non-negative integer", shape.dump()));
    if (__builtin_mul_overflow(guard, std::max<uint64_t>(dim, 1), &guard) || guard > static_cast<uint64_t>(INT64_MAX))
      fail(fmt::format("shape {} is too large", shape.dump()));
    elements *= dim;  // cannot overflow: bounded by guard
    e.shape.push_back(static_cast<int64_t>(dim));
  }

  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_count(offsets[0], e.begin) || !as_count(offsets[1], e.end))
    fail(fmt::format("data_offsets {} is not [begin, end]", offsets.dump()));
  if (e.begin > e.end) fail(fmt::format("data_offsets [{}, {}] has begin after end", e.begin, e.end));
  if (e.end > data_size)
    fail(fmt::format("data_offsets end {} is past the end of the data section ({} bytes)", e.end, data_size));

  uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(traits(e.dtype).block_bytes), &bytes) ||
      bytes != e.end - e.begin)
    fail(fmt::format("shape {} in {} needs {} bytes, but data_offsets [{}, {}] hold {}", shape_to_string(e.shape),
                     dtype_str, elements * traits(e.dtype).block_bytes, e.begin, e.end, e.end - e.begin));
  return e;
}

// Sorted by begin, consecutive tensors must touch: an overlap would alias two tensors, a gap would hide bytes
// (the format forbids both, which also rules out polyglot files).
void check_tiling(const std::string& path, std::vector<Entry>& entries, uint64_t data_size) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' (bytes {}..{}) overlaps tensor '{}' (bytes {}..{})", path,
                  e.name, e.begin, e.end, previous->name, previous->begin, previous->end);
    if (e.begin > covered)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}': data section bytes {}..{} before it belong to no tensor",
                  path, e.name, covered, e.begin);
    covered = e.end;
    if (e.end > e.begin || previous == nullptr) previous = &e;
  }
  if (covered != data_size)
    throw_error(ErrorKind::BadInput, "{}: data section bytes {}..{} at the end belong to no tensor", path, covered,
                data_size);
}

}  // namespace

std::optional<std::string_view> safetensors_dtype_name(DType dtype) {
  for (const auto& d : kHandledDTypes)
    if (d.dtype == dtype) return d.name;
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const auto& d : kHandledDTypes)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = MappedFile::open(path);
  const uint8_t* base = file.mapping_->data();
  const size_t size = file.mapping_->size();
  if (size < 8) throw_error(ErrorKind::BadInput, "{}: file is {} bytes, shorter than the 8-byte header length", path, size);
  const uint64_t header_len = read_u64_le(base);
  if (header_len > size - 8)
    throw_error(ErrorKind::BadInput, "{}: header length {} is longer than the file ({} bytes after the length)", path,
                header_len, size - 8);
  if (header_len > kMaxHeaderBytes)
    throw_error(ErrorKind::BadInput, "{}: header length {} exceeds the {}-byte limit", path, header_len,
                kMaxHeaderBytes);
  file.data_offset_ = 8 + static_cast<size_t>(header_len);
  const uint64_t data_size = size - file.data_offset_;

  const std::string_view header_text(reinterpret_cast<const char*>(base + 8), static_cast<size_t>(header_len));
  const json header = parse_json_strict(header_text, path + " (safetensors header)", "tensor");
  if (!header.is_object()) throw_error(ErrorKind::BadInput, "{}: header is not a JSON object", path);

  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw_error(ErrorKind::BadInput, "{}: __metadata__ is not an object", path);
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          throw_error(ErrorKind::BadInput, "{}: __metadata__ value of '{}' is not a string", path, mk);
        file.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, key, value, data_size));
  }
  check_tiling(path, entries, data_size);

  const uint8_t* data = base + file.data_offset_;
  std::shared_ptr<const void> keepalive = file.mapping_;
  file.tensors_.reserve(entries.size());
  for (Entry& e : entries) {
    const uint8_t* p = data + e.begin;
    const size_t n = static_cast<size_t>(e.end - e.begin);
    const size_t align = traits(e.dtype).block_bytes;
    if (reinterpret_cast<uintptr_t>(p) % align != 0) {
      // Only files written without header padding get here; a copy keeps every reader free of unaligned loads.
      spdlog::debug("{}: tensor '{}' is not {}-byte aligned in the file; copying it", path, e.name, align);
      file.tensors_.push_back(Tensor::owned(e.name, std::move(e.shape), e.dtype, std::vector<uint8_t>(p, p + n)));
    } else {
      file.tensors_.push_back(Tensor::view(e.name, std::move(e.shape), e.dtype, p, n, keepalive));
    }
    file.index_[e.name] = file.tensors_.size() - 1;
  }
  return file;
}

const Tensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// A shard name from an index must be a plain file name in the folder: "../x" or "/etc/x" would read files the
// checkpoint does not own.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
         name != "." && name != "..";
}

SafetensorsCheckpoint read_sharded(const std::string& dir, const std::string& index_path) {
  const json index = read_json_file_strict(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw_error(ErrorKind::BadInput, "{}: no 'weight_map' object", index_path);

  // shard file → the tensors the map places there; shards are read in name order (model-00001-of-... first).
  std::vector<std::string> shards;
  std::map<std::string, std::set<std::string>> listed;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string())
      throw_error(ErrorKind::BadInput, "{}: weight_map entry of tensor '{}' is not a file name", index_path, name);
    const std::string file = shard.get<std::string>();
    if (!is_plain_file_name(file))
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' is mapped to '{}', which is not a file in the folder",
                  index_path, name, file);
    if (listed.find(file) == listed.end()) shards.push_back(file);
    listed[file].insert(name);
  }
  std::sort(shards.begin(), shards.end());
  for (const std::string& shard : shards)
    if (!file_exists(dir + "/" + shard))
      throw_error(ErrorKind::BadInput, "{}: shard '{}' is listed but does not exist", index_path, shard);

  SafetensorsCheckpoint checkpoint;
  for (const std::string& shard : shards) {
    const std::string shard_path = dir + "/" + shard;
    SafetensorsFile file = SafetensorsFile::open(shard_path);
    const std::set<std::string>& expected = listed[shard];
    for (const Tensor& t : file.tensors())
      if (expected.count(t.name()) == 0)
        throw_error(ErrorKind::BadInput, "{}: tensor '{}' is not where {} says it is (or is not listed there)",
                    shard_path, t.name(), kSafetensorsIndexFile);
    for (const std::string& name : expected)
      if (file.find(name) == nullptr)
        throw_error(ErrorKind::BadInput, "{}: tensor '{}' is mapped to shard '{}', which does not contain it",
                    index_path, name, shard);
    for (const auto& [k, v] : file.metadata()) checkpoint.metadata.emplace(k, v);
    for (const Tensor& t : file.tensors()) checkpoint.tensors.push_back(t);
    checkpoint.files.push_back(shard_path);
  }
  return checkpoint;
}

}  // namespace

SafetensorsCheckpoint read_safetensors_checkpoint(const std::string& dir) {
  const std::string single = dir + "/" + kSafetensorsSingleFile;
  const std::string index = dir + "/" + kSafetensorsIndexFile;
  if (file_exists(single)) {
    SafetensorsFile file = SafetensorsFile::open(single);
    return SafetensorsCheckpoint{file.tensors(), file.metadata(), {single}};
  }
  if (file_exists(index)) return read_sharded(dir, index);
  if (file_exists(dir + "/pytorch_model.bin") || file_exists(dir + "/pytorch_model.bin.index.json"))
    throw_error(ErrorKind::Unsupported,
                "{}: only PyTorch pickle weights (pytorch_model.bin) found; slmopt reads safetensors (convert with "
                "transformers' save_pretrained(safe_serialization=True))", dir);
  throw_error(ErrorKind::BadInput, "{}: no {} or {}", dir, kSafetensorsSingleFile, kSafetensorsIndexFile);
}

}  // namespace slmopt
