// safetensors writing: one file, or shards plus model.safetensors.index.json. Tensors stream one at a time
// (a converted tensor goes through a bounded row buffer), so memory stays near one tensor whatever the model
// size; the header is built first from the planned sizes, with sorted keys, so equal inputs give equal bytes.
#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/io/safetensors.h"

namespace slmopt {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

// Rows converted per write when a tensor changes dtype: bounds the temporary buffers to a few MB.
constexpr int64_t kConvertElements = 1 << 20;

// One entry of a file: a stored tensor, or one made on demand (SafetensorsEntry).
struct Source {
  const std::string* name;
  const std::vector<int64_t>* shape;
  DType dtype;                                 // of the tensor handed to the writer
  const Tensor* tensor = nullptr;              // stored, or
  const std::function<Tensor()>* produce = nullptr;  // made when reached
  std::optional<DType> store_as = std::nullopt;      // this entry's float type, over the file's
};

struct Planned {
  Source source;
  DType dtype;     // as stored in the file
  uint64_t bytes;  // stored size
};

bool is_integer(DType d) { return d == DType::I8 || d == DType::I32 || d == DType::I64; }

Planned plan(const Source& t, std::optional<DType> float_type, const std::string& path) {
  DType stored = t.dtype;
  if (!is_integer(stored) && (t.store_as || float_type)) stored = t.store_as ? *t.store_as : *float_type;
  if (!safetensors_dtype_name(stored))
    throw_error(ErrorKind::Unsupported, "{}: tensor '{}' is {}, which safetensors cannot store; choose a float type",
                path, *t.name, dtype_name(stored));
  if (stored != t.dtype && !(stored == DType::F32 || stored == DType::F16 || stored == DType::BF16))
    throw_error(ErrorKind::Internal, "{}: cannot convert tensor '{}' to {}", path, *t.name, dtype_name(stored));
  return {t, stored, Tensor::bytes_for(*t.shape, stored)};
}

std::vector<Source> sources_of(const std::vector<const Tensor*>& tensors) {
  std::vector<Source> out;
  out.reserve(tensors.size());
  for (const Tensor* t : tensors) out.push_back({&t->name(), &t->shape(), t->dtype(), t, nullptr});
  return out;
}

std::vector<Source> sources_of(const std::vector<SafetensorsEntry>& entries) {
  std::vector<Source> out;
  out.reserve(entries.size());
  for (const SafetensorsEntry& e : entries) out.push_back({&e.name, &e.shape, e.dtype, nullptr, &e.produce, e.store_as});
  return out;
}

void write_converted(AtomicFile& out, const Tensor& t, DType dtype) {
  const int64_t cols = t.cols(), rows = t.rows();
  if (cols == 0 || rows == 0) return;
  const int64_t chunk_rows = std::max<int64_t>(1, kConvertElements / cols);
  std::vector<float> values;
  std::vector<uint8_t> bytes;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
    const int64_t r1 = std::min(rows, r0 + chunk_rows);
    const size_t n = static_cast<size_t>((r1 - r0) * cols);
    values.resize(n);
    t.rows_to_f32(r0, r1, values.data());
    // A mapped input is read once: its pages go back as they are converted (memory stays near one buffer).
    const size_t row_bytes = t.nbytes() / static_cast<size_t>(rows);
    release_mapped_pages(t.data() + static_cast<size_t>(r0) * row_bytes, static_cast<size_t>(r1 - r0) * row_bytes);
    if (dtype == DType::F32) {
      out.write(values.data(), n * sizeof(float));
      continue;
    }
    bytes.resize(n * 2);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = dtype == DType::F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
    out.write(bytes.data(), bytes.size());
  }
}

std::string build_header(const std::vector<Planned>& layout, const std::map<std::string, std::string>& metadata,
                         const std::string& path) {
  nlohmann::json header = nlohmann::json::object();  // std::map storage: keys come out sorted
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const Planned& p : layout) {
    header[*p.source.name] = {{"dtype", std::string(*safetensors_dtype_name(p.dtype))},
                              {"shape", *p.source.shape},
                                {"data_offsets", {offset, offset + p.bytes}}};
    offset += p.bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::BadInput, "{}: cannot encode the header (tensor or metadata names must be UTF-8): {}",
                path, e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // 8 + header stays a multiple of 8
  return text;
}

void remove_if_present(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) throw_error(ErrorKind::Io, "{}: cannot remove stale file: {}", path, ec.message());
}

void write_file(const std::string& path, const std::vector<Source>& tensors,
                const std::map<std::string, std::string>& metadata, std::optional<DType> float_type) {
  if (float_type && !(*float_type == DType::F32 || *float_type == DType::F16 || *float_type == DType::BF16))
    throw_error(ErrorKind::Usage, "{}: float type must be f32, f16 or bf16, not {}", path, dtype_name(*float_type));
  std::set<std::string> names;
  std::vector<Planned> layout;
  layout.reserve(tensors.size());
  for (const Source& t : tensors) {
    if (!names.insert(*t.name).second)
      throw_error(ErrorKind::Internal, "{}: tensor '{}' is written twice", path, *t.name);
    layout.push_back(plan(t, float_type, path));
  }
  // Widest elements first keeps every tensor aligned to its element size (the data section starts 8-aligned).
  std::stable_sort(layout.begin(), layout.end(), [](const Planned& a, const Planned& b) {
    return traits(a.dtype).block_bytes > traits(b.dtype).block_bytes;
  });

  const std::string header = build_header(layout, metadata, path);
  AtomicFile out(path);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  out.write(length, 8);
  out.write(header.data(), header.size());
  for (const Planned& p : layout) {
    std::optional<Tensor> made;
    if (p.source.produce) {
      made.emplace((*p.source.produce)());
      if (made->name() != *p.source.name || made->shape() != *p.source.shape || made->dtype() != p.source.dtype)
        throw_error(ErrorKind::Internal, "{}: entry '{}' was planned as {} {} but made as '{}' {} {}", path,
                    *p.source.name, dtype_name(p.source.dtype), shape_to_string(*p.source.shape), made->name(),
                    dtype_name(made->dtype()), shape_to_string(made->shape()));
    }
    const Tensor& t = made ? *made : *p.source.tensor;
    if (p.dtype == t.dtype()) {
      out.write(t.data(), t.nbytes());
      release_mapped_pages(t.data(), t.nbytes());
    } else
      write_converted(out, t, p.dtype);
  }
  out.commit();
}

template <class Item>
std::vector<std::string> write_sharded(const std::string& dir, const std::vector<Item>& items,
                                       const std::map<std::string, std::string>& metadata, uint64_t max_shard_bytes,
                                       std::optional<DType> float_type) {
  // Greedy in the given order: a shard closes when the next tensor would push it past the limit.
  std::vector<std::vector<Source>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (const Source& t : sources_of(items)) {
    const uint64_t bytes = plan(t, float_type, dir).bytes;
    if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += bytes;
    total_bytes += bytes;
  }

  // A file of the other layout left in the folder would shadow the new one (readers prefer the single file).
  const std::string single_path = dir + "/" + kSafetensorsSingleFile;
  const std::string index_path = dir + "/" + kSafetensorsIndexFile;
  if (shards.size() == 1) {
    write_file(single_path, shards[0], metadata, float_type);
    remove_if_present(index_path);
    return {kSafetensorsSingleFile};
  }

  std::vector<std::string> files;
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    write_file(dir + "/" + file, shards[i], metadata, float_type);
    for (const Source& t : shards[i]) weight_map[*t.name] = file;
    files.push_back(file);
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
  write_file_atomic(index_path, index.dump(2) + "\n");
  remove_if_present(single_path);
  files.push_back(kSafetensorsIndexFile);
  return files;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<const Tensor*>& tensors,
                       const std::map<std::string, std::string>& metadata, std::optional<DType> float_type) {
  write_file(path, sources_of(tensors), metadata, float_type);
}

std::vector<std::string> write_safetensors_sharded(const std::string& dir, const std::vector<const Tensor*>& tensors,
                                                   const std::map<std::string, std::string>& metadata,
                                                   uint64_t max_shard_bytes, std::optional<DType> float_type) {
  return write_sharded(dir, tensors, metadata, max_shard_bytes, float_type);
}

std::vector<std::string> write_safetensors_sharded(const std::string& dir, const std::vector<SafetensorsEntry>& entries,
                                                   const std::map<std::string, std::string>& metadata,
                                                   uint64_t max_shard_bytes, std::optional<DType> float_type) {
  return write_sharded(dir, entries, metadata, max_shard_bytes, float_type);
}

}  // namespace slmopt
