// GGUF metadata values and the ordered key → value table (see gguf_format.h for the byte layout).
#include <limits>

#include "slmopt/core/error.h"
#include "slmopt/io/gguf_format.h"

namespace slmopt {

const char* gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

GgufValue GgufValue::array(GgufType element_type, std::vector<GgufValue> elements) {
  for (const auto& e : elements)
    if (e.type() != element_type)
      throw_error(ErrorKind::Internal, "GGUF array of {} given an element of type {}", gguf_type_name(element_type),
                  gguf_type_name(e.type()));
  GgufValue v(GgufType::Array, std::move(elements));
  v.element_type_ = element_type;
  return v;
}

GgufValue GgufValue::string_array(const std::vector<std::string>& values) {
  std::vector<GgufValue> elements;
  elements.reserve(values.size());
  for (const auto& s : values) elements.push_back(string(s));
  return array(GgufType::String, std::move(elements));
}

GgufValue GgufValue::f32_array(std::span<const float> values) {
  std::vector<GgufValue> elements;
  elements.reserve(values.size());
  for (float f : values) elements.push_back(f32(f));
  return array(GgufType::F32, std::move(elements));
}

GgufValue GgufValue::i32_array(std::span<const int32_t> values) {
  std::vector<GgufValue> elements;
  elements.reserve(values.size());
  for (int32_t i : values) elements.push_back(i32(i));
  return array(GgufType::I32, std::move(elements));
}

GgufValue GgufValue::u32_array(std::span<const uint32_t> values) {
  std::vector<GgufValue> elements;
  elements.reserve(values.size());
  for (uint32_t i : values) elements.push_back(u32(i));
  return array(GgufType::U32, std::move(elements));
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16: case GgufType::U32:
    case GgufType::I32: case GgufType::U64: case GgufType::I64:
      return true;
    default:
      return false;
  }
}

std::optional<int64_t> GgufValue::to_int() const {
  if (const auto* u = std::get_if<uint64_t>(&data_)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&data_)) return *i;
  return std::nullopt;
}

std::optional<uint64_t> GgufValue::to_uint() const {
  if (const auto* u = std::get_if<uint64_t>(&data_)) return *u;
  if (const auto* i = std::get_if<int64_t>(&data_); i && *i >= 0) return static_cast<uint64_t>(*i);
  return std::nullopt;
}

std::optional<double> GgufValue::to_float() const {
  if (const auto* d = std::get_if<double>(&data_)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&data_)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&data_)) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> GgufValue::to_bool() const {
  if (const auto* b = std::get_if<bool>(&data_)) return *b;
  return std::nullopt;
}

const std::string* GgufValue::to_string() const { return std::get_if<std::string>(&data_); }

const std::vector<GgufValue>* GgufValue::to_array() const { return std::get_if<std::vector<GgufValue>>(&data_); }

void GgufMetadata::set(std::string_view key_view, GgufValue value) {
  std::string key(key_view);
  auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(key, std::move(value));
}

void GgufMetadata::erase(std::string_view key) {
  auto it = index_.find(std::string(key));
  if (it == index_.end()) return;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

}  // namespace slmopt
