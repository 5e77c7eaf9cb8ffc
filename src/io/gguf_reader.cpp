// GGUF reader: parses the header, metadata and tensor infos of a mapped file (byte layout in gguf_format.h) and
// hands out tensors as zero-copy views. Every count, length and offset is checked against the bytes really
// present before anything is allocated or read, so hostile files fail with Error(BadInput), never a crash.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/gguf_format.h"

namespace slmopt {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

constexpr int kMaxArrayNesting = 4;

// Smallest encoding of one value of `type`, used to refuse counts the remaining bytes cannot possibly hold.
size_t min_value_bytes(GgufType type) {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: case GgufType::String: return 8;
    case GgufType::Array: return 12;
  }
  return 1;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

// ggml types that exist but slmopt has no codec for: their files are valid, just not ours to read.
const char* ggml_type_without_codec(uint32_t ggml_type) {
  switch (ggml_type) {
    case 9: return "q8_1";
    case 15: return "q8_k";
    case 16: return "iq2_xxs";
    case 17: return "iq2_xs";
    case 18: return "iq3_xxs";
    case 19: return "iq1_s";
    case 21: return "iq3_s";
    case 22: return "iq2_s";
    case 23: return "iq4_xs";
    case 25: return "i16";
    case 28: return "f64";
    case 29: return "iq1_m";
    case 34: return "tq1_0";
    case 35: return "tq2_0";
    case 39: return "mxfp4";
    default: return nullptr;
  }
}

class Cursor {
 public:
  Cursor(const std::string& source, const uint8_t* data, size_t size) : source_(source), data_(data), size_(size) {}

  size_t position() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  void need(size_t n, std::string_view what) const {
    if (n > remaining())
      throw_error(ErrorKind::BadInput, "{}: truncated GGUF file: {} needs {} bytes at offset {}, but only {} remain",
                  source_, what, n, pos_, remaining());
  }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string(std::string_view what) {
    const uint64_t length = read<uint64_t>(what);
    if (length > remaining())
      throw_error(ErrorKind::BadInput, "{}: {} claims a string of {} bytes at offset {}, past the end of the file",
                  source_, what, length, pos_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(length));
    pos_ += static_cast<size_t>(length);
    return s;
  }

 private:
  const std::string& source_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

GgufValue read_value(Cursor& in, const std::string& source, GgufType type, const std::string& what, int depth) {
  switch (type) {
    case GgufType::U8: return GgufValue::u8(in.read<uint8_t>(what));
    case GgufType::I8: return GgufValue::i8(in.read<int8_t>(what));
    case GgufType::U16: return GgufValue::u16(in.read<uint16_t>(what));
    case GgufType::I16: return GgufValue::i16(in.read<int16_t>(what));
    case GgufType::U32: return GgufValue::u32(in.read<uint32_t>(what));
    case GgufType::I32: return GgufValue::i32(in.read<int32_t>(what));
    case GgufType::F32: return GgufValue::f32(in.read<float>(what));
    case GgufType::Bool: return GgufValue::boolean(in.read<uint8_t>(what) != 0);
    case GgufType::String: return GgufValue::string(in.read_string(what));
    case GgufType::U64: return GgufValue::u64(in.read<uint64_t>(what));
    case GgufType::I64: return GgufValue::i64(in.read<int64_t>(what));
    case GgufType::F64: return GgufValue::f64(in.read<double>(what));
    case GgufType::Array: {
      if (depth >= kMaxArrayNesting)
        throw_error(ErrorKind::BadInput, "{}: {} nests arrays deeper than {}", source, what, kMaxArrayNesting);
      const uint32_t element = in.read<uint32_t>(what);
      if (!known_value_type(element))
        throw_error(ErrorKind::BadInput, "{}: {} is an array of unknown value type {}", source, what, element);
      const auto element_type = static_cast<GgufType>(element);
      const uint64_t count = in.read<uint64_t>(what);
      if (count > in.remaining() / min_value_bytes(element_type))
        throw_error(ErrorKind::BadInput, "{}: {} claims {} {} elements, more than the {} remaining bytes can hold",
                    source, what, count, gguf_type_name(element_type), in.remaining());
      std::vector<GgufValue> elements;
      elements.reserve(static_cast<size_t>(count));
      for (uint64_t i = 0; i < count; ++i) elements.push_back(read_value(in, source, element_type, what, depth + 1));
      return GgufValue::array(element_type, std::move(elements));
    }
  }
  throw_error(ErrorKind::BadInput, "{}: {} has unknown value type {}", source, what, static_cast<uint32_t>(type));
}

uint64_t align_up(uint64_t x, uint64_t alignment) { return (x + alignment - 1) / alignment * alignment; }

}  // namespace

GgufFile GgufFile::open(const std::string& path) {
  auto mapping = MappedFile::open(path);
  const uint8_t* data = mapping->data();
  const size_t size = mapping->size();
  return parse(path, data, size, std::move(mapping));
}

GgufFile GgufFile::parse(std::string source, const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive) {
  GgufFile file;
  file.source_ = std::move(source);
  file.data_ = data;
  file.size_ = size;
  file.keepalive_ = std::move(keepalive);
  const std::string& src = file.source_;
  Cursor in(src, data, size);

  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0)
    throw_error(ErrorKind::BadInput, "{}: not a GGUF file (the magic bytes are not \"GGUF\")", src);
  in.read<uint32_t>("magic");
  file.version_ = in.read<uint32_t>("the version");
  if (file.version_ != 2 && file.version_ != 3)
    throw_error(ErrorKind::BadInput, "{}: GGUF version {} is not supported (only 2 and 3)", src, file.version_);
  const uint64_t tensor_count = in.read<uint64_t>("the tensor count");
  const uint64_t kv_count = in.read<uint64_t>("the metadata count");
  // A key/value pair takes at least 13 bytes and a tensor info at least 32: refuse counts the file cannot hold.
  if (kv_count > in.remaining() / 13)
    throw_error(ErrorKind::BadInput, "{}: claims {} metadata entries, more than the {} remaining bytes can hold", src,
                kv_count, in.remaining());
  if (tensor_count > in.remaining() / 32)
    throw_error(ErrorKind::BadInput, "{}: claims {} tensors, more than the {} remaining bytes can hold", src,
                tensor_count, in.remaining());

  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = in.read_string(fmt::format("metadata key #{}", i));
    const std::string what = fmt::format("key '{}'", key);
    if (file.metadata_.has(key)) throw_error(ErrorKind::BadInput, "{}: duplicate metadata {}", src, what);
    const uint32_t type = in.read<uint32_t>(what);
    if (!known_value_type(type))
      throw_error(ErrorKind::BadInput, "{}: {} has unknown value type {}", src, what, type);
    GgufValue value = read_value(in, src, static_cast<GgufType>(type), what, 0);
    file.metadata_.set(key, std::move(value));
  }

  if (const GgufValue* alignment = file.metadata_.find("general.alignment")) {
    const auto a = alignment->to_int();
    if (alignment->type() != GgufType::U32 || !a || *a == 0 || !std::has_single_bit(static_cast<uint64_t>(*a)))
      throw_error(ErrorKind::BadInput, "{}: general.alignment must be a power-of-two u32", src);
    file.alignment_ = static_cast<size_t>(*a);
  }

  file.tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    info.name = in.read_string(fmt::format("tensor name #{}", i));
    const std::string what = fmt::format("tensor '{}'", info.name);
    if (info.name.size() > kGgufMaxTensorName)
      throw_error(ErrorKind::BadInput, "{}: {} has a name longer than {} bytes", src, what, kGgufMaxTensorName);
    if (file.tensor_index_.count(info.name)) throw_error(ErrorKind::BadInput, "{}: duplicate {}", src, what);
    const uint32_t n_dims = in.read<uint32_t>(what);
    if (n_dims < 1 || n_dims > kGgufMaxDims)
      throw_error(ErrorKind::BadInput, "{}: {} has {} dimensions (1 to {} allowed)", src, what, n_dims, kGgufMaxDims);
    std::vector<int64_t> dims(n_dims);
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = in.read<uint64_t>(what);
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(elements, static_cast<int64_t>(dim), &elements))
        throw_error(ErrorKind::BadInput, "{}: {} has an absurd dimension {}", src, what, dim);
      dims[d] = static_cast<int64_t>(dim);
    }
    const uint32_t ggml_type = in.read<uint32_t>(what);
    const auto dtype = dtype_from_ggml_type(static_cast<int>(ggml_type));
    if (!dtype) {
      if (const char* name = ggml_type_without_codec(ggml_type))
        throw_error(ErrorKind::Unsupported, "{}: {} has ggml type {} ({}), which slmopt cannot decode", src, what,
                    ggml_type, name);
      throw_error(ErrorKind::BadInput, "{}: {} has unknown ggml type {}", src, what, ggml_type);
    }
    info.dtype = *dtype;
    const auto& t = traits(info.dtype);
    if (dims[0] % t.block_size != 0)
      throw_error(ErrorKind::BadInput, "{}: {} has rows of {} elements, not a whole number of {} blocks of {}", src,
                  what, dims[0], t.name, t.block_size);
    // Every product overflow-checked: 2^62 F32 elements used to wrap to 0 bytes and be accepted.
    uint64_t nbytes = 0;
    bool wrapped = __builtin_mul_overflow(static_cast<uint64_t>(dims[0] / t.block_size), t.block_bytes, &nbytes);
    for (uint32_t d = 1; d < n_dims; ++d)
      wrapped = wrapped || __builtin_mul_overflow(nbytes, static_cast<uint64_t>(dims[d]), &nbytes);
    if (wrapped) throw_error(ErrorKind::BadInput, "{}: {} is absurdly large", src, what);
    info.nbytes = static_cast<size_t>(nbytes);
    info.offset = in.read<uint64_t>(what);
    if (info.offset % file.alignment_ != 0)
      throw_error(ErrorKind::BadInput, "{}: {} has offset {}, not a multiple of the alignment {}", src, what,
                  info.offset, file.alignment_);
    info.shape.assign(dims.rbegin(), dims.rend());
    file.tensor_index_.emplace(info.name, file.tensors_.size());
    file.tensors_.push_back(std::move(info));
  }

  file.data_offset_ = align_up(in.position(), file.alignment_);
  if (!file.tensors_.empty() && file.data_offset_ > size)
    throw_error(ErrorKind::BadInput, "{}: the data section would start at byte {}, past the end of the file ({} bytes)",
                src, file.data_offset_, size);
  const uint64_t data_size = file.tensors_.empty() ? 0 : size - file.data_offset_;
  for (const auto& info : file.tensors_)
    if (info.offset > data_size || info.nbytes > data_size - info.offset)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' ({} bytes at data offset {}) runs past the end of the file",
                  src, info.name, info.nbytes, info.offset);

  std::vector<size_t> order(file.tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return file.tensors_[a].offset < file.tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& prev = file.tensors_[order[i - 1]];
    const auto& next = file.tensors_[order[i]];
    if (prev.nbytes > 0 && next.nbytes > 0 && prev.offset + prev.nbytes > next.offset)
      throw_error(ErrorKind::BadInput, "{}: the data of tensors '{}' and '{}' overlap", src, prev.name, next.name);
  }
  return file;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Tensor GgufFile::view(const GgufTensorInfo& info) const {
  return Tensor::view(info.name, info.shape, info.dtype, data_ + data_offset_ + info.offset, info.nbytes, keepalive_);
}

Tensor GgufFile::view(std::string_view name) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (!info) throw_error(ErrorKind::BadInput, "{}: tensor '{}' is missing", source_, name);
  return view(*info);
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = metadata_.find(key);
  if (!v) return std::nullopt;
  const auto i = v->to_int();
  if (!i) throw_error(ErrorKind::BadInput, "{}: key '{}' has type {}, expected an integer", source_, key,
                      gguf_type_name(v->type()));
  return i;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = metadata_.find(key);
  if (!v) return std::nullopt;
  const auto f = v->to_float();
  if (!f) throw_error(ErrorKind::BadInput, "{}: key '{}' has type {}, expected a number", source_, key,
                      gguf_type_name(v->type()));
  return f;
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = metadata_.find(key);
  if (!v) return std::nullopt;
  const auto b = v->to_bool();
  if (!b) throw_error(ErrorKind::BadInput, "{}: key '{}' has type {}, expected bool", source_, key,
                      gguf_type_name(v->type()));
  return b;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = metadata_.find(key);
  if (!v) return std::nullopt;
  const std::string* s = v->to_string();
  if (!s) throw_error(ErrorKind::BadInput, "{}: key '{}' has type {}, expected a string", source_, key,
                      gguf_type_name(v->type()));
  return *s;
}

int64_t GgufFile::require_int(std::string_view key) const {
  if (auto v = get_int(key)) return *v;
  throw_error(ErrorKind::BadInput, "{}: required key '{}' is missing", source_, key);
}

double GgufFile::require_float(std::string_view key) const {
  if (auto v = get_float(key)) return *v;
  throw_error(ErrorKind::BadInput, "{}: required key '{}' is missing", source_, key);
}

std::string GgufFile::require_string(std::string_view key) const {
  if (auto v = get_string(key)) return *v;
  throw_error(ErrorKind::BadInput, "{}: required key '{}' is missing", source_, key);
}

const std::vector<GgufValue>* GgufFile::get_array(std::string_view key, GgufType element_type) const {
  const GgufValue* v = metadata_.find(key);
  if (!v) return nullptr;
  if (v->type() != GgufType::Array || v->element_type() != element_type)
    throw_error(ErrorKind::BadInput, "{}: key '{}' has type {}, expected an array of {}", source_, key,
                v->type() == GgufType::Array
                    ? fmt::format("array of {}", gguf_type_name(v->element_type()))
                    : std::string(gguf_type_name(v->type())),
                gguf_type_name(element_type));
  return v->to_array();
}

}  // namespace slmopt
