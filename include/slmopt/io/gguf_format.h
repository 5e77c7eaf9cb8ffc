// The GGUF container format (versions 2 and 3 read, version 3 written): typed metadata, tensor infos and
// aligned tensor data, independent of what the metadata means (model translation lives in io/gguf.h).
//
// Byte layout (little-endian throughout):
//
//   offset 0   "GGUF" magic (47 47 55 46)
//              uint32 version (3)
//              uint64 tensor_count
//              uint64 kv_count
//   then       kv_count × { string key, uint32 value_type, value }
//   then       tensor_count × { string name (≤ 63 bytes), uint32 n_dims (1..4),
//                               uint64 dims[n_dims] in ggml order (innermost first: a PyTorch [out, in]
//                               weight has dims {in, out}), uint32 ggml_type,
//                               uint64 offset (relative to the data section, a multiple of the alignment) }
//   then       zero padding up to a multiple of the alignment (metadata key general.alignment, uint32,
//              a power of two; 32 when absent)
//   then       the data section: each tensor's bytes at its offset, zero padding between tensors.
//
//   string   = uint64 byte length + UTF-8 bytes (no terminating NUL)
//   value    = by value_type: u8=0 i8=1 u16=2 i16=3 u32=4 i32=5 f32=6 bool=7 (one byte) string=8
//              array=9 (uint32 element type + uint64 count + count elements) u64=10 i64=11 f64=12
//
// The reader maps the file and checks every count, length and offset against the bytes that are really there
// before it allocates or reads anything, so a malformed file gives Error(BadInput) naming the file (and the key
// or tensor at fault), never a crash or a huge allocation. The writer streams: it takes the tensor plans up front
// (the infos need every tensor's final type and size), then asks for one tensor's bytes at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "slmopt/ir/dtype.h"
#include "slmopt/ir/tensor.h"

namespace slmopt {

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr size_t kGgufDefaultAlignment = 32;
inline constexpr size_t kGgufMaxTensorName = 63;  // ggml's GGML_MAX_NAME (64) includes the NUL
inline constexpr size_t kGgufMaxDims = 4;

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};

const char* gguf_type_name(GgufType type);

// One metadata value: a scalar of one of the GGUF value types, a string, or an array of values that all share
// one element type. Integers keep their exact GGUF type so a file read and written back is byte-identical.
class GgufValue {
 public:
  GgufValue() : GgufValue(u32(0)) {}

  static GgufValue u8(uint8_t v) { return GgufValue(GgufType::U8, uint64_t{v}); }
  static GgufValue i8(int8_t v) { return GgufValue(GgufType::I8, int64_t{v}); }
  static GgufValue u16(uint16_t v) { return GgufValue(GgufType::U16, uint64_t{v}); }
  static GgufValue i16(int16_t v) { return GgufValue(GgufType::I16, int64_t{v}); }
  static GgufValue u32(uint32_t v) { return GgufValue(GgufType::U32, uint64_t{v}); }
  static GgufValue i32(int32_t v) { return GgufValue(GgufType::I32, int64_t{v}); }
  static GgufValue u64(uint64_t v) { return GgufValue(GgufType::U64, v); }
  static GgufValue i64(int64_t v) { return GgufValue(GgufType::I64, v); }
  static GgufValue f32(float v) { return GgufValue(GgufType::F32, static_cast<double>(v)); }
  static GgufValue f64(double v) { return GgufValue(GgufType::F64, v); }
  static GgufValue boolean(bool v) { return GgufValue(GgufType::Bool, v); }
  static GgufValue string(std::string v) { return GgufValue(GgufType::String, std::move(v)); }
  // Every element must have type `element_type` (Error(Internal) otherwise).
  static GgufValue array(GgufType element_type, std::vector<GgufValue> elements);
  static GgufValue string_array(const std::vector<std::string>& values);
  static GgufValue f32_array(std::span<const float> values);
  static GgufValue i32_array(std::span<const int32_t> values);
  static GgufValue u32_array(std::span<const uint32_t> values);

  GgufType type() const { return type_; }
  GgufType element_type() const { return element_type_; }  // meaningful for arrays only
  bool is_integer() const;
  bool is_float() const { return type_ == GgufType::F32 || type_ == GgufType::F64; }

  // Integer of any width and signedness (nullopt for other types, or a u64 above INT64_MAX).
  std::optional<int64_t> to_int() const;
  // Integer of any width that is not negative (covers the whole u64 range).
  std::optional<uint64_t> to_uint() const;
  // F32/F64, or any integer converted.
  std::optional<double> to_float() const;
  std::optional<bool> to_bool() const;
  const std::string* to_string() const;
  const std::vector<GgufValue>* to_array() const;

  bool operator==(const GgufValue& other) const = default;

 private:
  template <typename T>
  GgufValue(GgufType type, T value) : type_(type), data_(std::in_place_type<T>, std::move(value)) {}

  GgufType type_;
  GgufType element_type_ = GgufType::U8;
  // Unsigned integers widen to uint64_t, signed ones to int64_t, F32 to double (exactly).
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> data_;
};

// Ordered key → value metadata (order is kept so that files are written deterministically).
class GgufMetadata {
 public:
  // Adds a key, or replaces its value in place.
  void set(std::string_view key, GgufValue value);
  void erase(std::string_view key);
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const std::vector<std::pair<std::string, GgufValue>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, GgufValue>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order (outermost first): the file's ggml dims reversed
  DType dtype = DType::F32;
  uint64_t offset = 0;  // relative to the data section
  size_t nbytes = 0;
};

// A parsed GGUF file. Tensors are zero-copy views into the mapping, which they keep alive.
class GgufFile {
 public:
  // Maps and parses `path`: Error(Io) when it cannot be read, Error(BadInput) when it is malformed,
  // Error(Unsupported) for a tensor type ggml knows but slmopt does not.
  static GgufFile open(const std::string& path);
  // Parses bytes owned by `keepalive`; `source` names them in errors.
  static GgufFile parse(std::string source, const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive);

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const GgufMetadata& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // A view of the tensor's bytes, shaped in PyTorch order and named as in the file.
  Tensor view(const GgufTensorInfo& info) const;
  // Throws Error(BadInput) naming the file and the tensor when it is absent.
  Tensor view(std::string_view name) const;

  // Typed metadata look-ups. The get_ forms return nullopt when the key is absent; all forms throw
  // Error(BadInput) naming the file and the key when the value has the wrong type or is out of range.
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;
  std::string require_string(std::string_view key) const;
  // An array whose elements have `element_type`; nullptr when absent.
  const std::vector<GgufValue>* get_array(std::string_view key, GgufType element_type) const;

 private:
  GgufFile() = default;
  std::string source_;
  uint32_t version_ = 0;
  size_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> keepalive_;
};

// What the writer needs to know about a tensor before any data is written.
struct GgufTensorPlan {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order
  DType dtype = DType::F32;
};

// Produces tensor `index` of the plan list when its turn comes: an owned tensor or a view whose dtype and shape
// match the plan. It is written and dropped before the next one is asked for.
using GgufTensorSource = std::function<Tensor(size_t index)>;

// The streaming form: source(index, write) hands tensor `index`'s bytes to `write` in any number of pieces,
// which must add up to the plan's size (Error(Internal) otherwise), so neither side holds a whole tensor.
using GgufByteSink = std::function<void(const uint8_t* data, size_t n)>;
using GgufStreamSource = std::function<void(size_t index, const GgufByteSink& write)>;
void write_gguf_file_streamed(const std::string& path, const GgufMetadata& metadata,
                              const std::vector<GgufTensorPlan>& plans, const GgufStreamSource& source);

// Writes a GGUF v3 file through AtomicFile (so a failure leaves nothing behind). The alignment comes from
// metadata's general.alignment (a uint32 power of two) or is 32. Throws Error(Internal) for a plan ggml cannot
// store (name too long, duplicate, rank outside 1..4, a dtype without a ggml type) or a produced tensor that
// does not match its plan.
void write_gguf_file(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorPlan>& plans,
                     const GgufTensorSource& source);

}  // namespace slmopt
