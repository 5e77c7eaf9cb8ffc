// GGUF writer (byte layout in gguf_format.h). The header, metadata and tensor infos are laid out from the plans
// alone; then each tensor is produced, checked against its plan and streamed to the AtomicFile, so a quantizer
// behind the source callback holds about one tensor at a time.
#include <bit>
#include <cstring>
#include <unordered_set>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/io/gguf_format.h"

namespace slmopt {
namespace {

class ByteBuffer {
 public:
  template <typename T>
  void put(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    data_.append(bytes, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    data_.append(s);
  }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

void put_value(ByteBuffer& out, const GgufValue& v, const std::string& key) {
  auto integer = [&]() -> uint64_t {
    if (auto u = v.to_uint()) return *u;
    return static_cast<uint64_t>(*v.to_int());  // negative signed values keep their two's-complement bits
  };
  switch (v.type()) {
    case GgufType::U8: case GgufType::I8: out.put(static_cast<uint8_t>(integer())); return;
    case GgufType::U16: case GgufType::I16: out.put(static_cast<uint16_t>(integer())); return;
    case GgufType::U32: case GgufType::I32: out.put(static_cast<uint32_t>(integer())); return;
    case GgufType::U64: case GgufType::I64: out.put(integer()); return;
    case GgufType::F32: out.put(static_cast<float>(*v.to_float())); return;
    case GgufType::F64: out.put(*v.to_float()); return;
    case GgufType::Bool: out.put(static_cast<uint8_t>(*v.to_bool() ? 1 : 0)); return;
    case GgufType::String: out.put_string(*v.to_string()); return;
    case GgufType::Array: {
      const auto& elements = *v.to_array();
      out.put(static_cast<uint32_t>(v.element_type()));
      out.put<uint64_t>(elements.size());
      for (const auto& e : elements) put_value(out, e, key);
      return;
    }
  }
  throw_error(ErrorKind::Internal, "GGUF key '{}' has an unknown value type", key);
}

uint64_t align_up(uint64_t x, uint64_t alignment) { return (x + alignment - 1) / alignment * alignment; }

}  // namespace

void write_gguf_file(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorPlan>& plans,
                     const GgufTensorSource& source) {
  write_gguf_file_streamed(path, metadata, plans, [&](size_t i, const GgufByteSink& write) {
    const auto& plan = plans[i];
    const Tensor tensor = source(i);
    if (tensor.dtype() != plan.dtype || tensor.shape() != plan.shape)
      throw_error(ErrorKind::Internal, "{}: tensor '{}' was planned as {} {} but produced as {} {}", path, plan.name,
                  dtype_name(plan.dtype), shape_to_string(plan.shape), dtype_name(tensor.dtype()),
                  shape_to_string(tensor.shape()));
    if (tensor.nbytes() > 0) write(tensor.data(), tensor.nbytes());
  });
}

void write_gguf_file_streamed(const std::string& path, const GgufMetadata& metadata,
                              const std::vector<GgufTensorPlan>& plans, const GgufStreamSource& source) {
  size_t alignment = kGgufDefaultAlignment;
  if (const GgufValue* a = metadata.find("general.alignment")) {
    const auto value = a->to_uint();
    if (a->type() != GgufType::U32 || !value || *value == 0 || !std::has_single_bit(*value))
      throw_error(ErrorKind::Internal, "{}: general.alignment must be a power-of-two u32", path);
    alignment = static_cast<size_t>(*value);
  }

  ByteBuffer header;
  header.put<uint32_t>(0x46554747u);  // "GGUF" read as a little-endian uint32
  header.put<uint32_t>(kGgufVersion);
  header.put<uint64_t>(plans.size());
  header.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata.entries()) {
    header.put_string(key);
    header.put(static_cast<uint32_t>(value.type()));
    put_value(header, value, key);
  }

  std::vector<uint64_t> sizes(plans.size());
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    const auto& plan = plans[i];
    if (plan.name.empty() || plan.name.size() > kGgufMaxTensorName)
      throw_error(ErrorKind::Internal, "{}: tensor name '{}' must have 1 to {} bytes", path, plan.name,
                  kGgufMaxTensorName);
    if (!names.insert(plan.name).second) throw_error(ErrorKind::Internal, "{}: duplicate tensor '{}'", path, plan.name);
    if (plan.shape.empty() || plan.shape.size() > kGgufMaxDims)
      throw_error(ErrorKind::Internal, "{}: tensor '{}' has rank {} (1 to {} allowed)", path, plan.name,
                  plan.shape.size(), kGgufMaxDims);
    const int ggml_type = traits(plan.dtype).ggml_type;
    if (ggml_type < 0)
      throw_error(ErrorKind::Internal, "{}: tensor '{}' has dtype {}, which GGUF cannot store", path, plan.name,
                  dtype_name(plan.dtype));
    sizes[i] = Tensor::bytes_for(plan.shape, plan.dtype);
    header.put_string(plan.name);
    header.put<uint32_t>(static_cast<uint32_t>(plan.shape.size()));
    for (auto it = plan.shape.rbegin(); it != plan.shape.rend(); ++it) header.put<uint64_t>(static_cast<uint64_t>(*it));
    header.put<uint32_t>(static_cast<uint32_t>(ggml_type));
    header.put<uint64_t>(offset);
    offset = align_up(offset + sizes[i], alignment);
  }

  AtomicFile file(path);
  file.write(header.data().data(), header.data().size());
  file.write_zeros(align_up(file.position(), alignment) - file.position());
  const uint64_t data_start = file.position();
  for (size_t i = 0; i < plans.size(); ++i) {
    const auto& plan = plans[i];
    const uint64_t start = file.position();
    source(i, [&](const uint8_t* data, size_t n) {
      if (file.position() - start + n > sizes[i])
        throw_error(ErrorKind::Internal, "{}: tensor '{}' produced more than its planned {} bytes ({} {})", path,
                    plan.name, sizes[i], dtype_name(plan.dtype), shape_to_string(plan.shape));
      if (n > 0) file.write(data, n);
    });
    if (file.position() - start != sizes[i])
      throw_error(ErrorKind::Internal, "{}: tensor '{}' was planned as {} bytes ({} {}) but produced {}", path,
                  plan.name, sizes[i], dtype_name(plan.dtype), shape_to_string(plan.shape), file.position() - start);
    const uint64_t written = file.position() - data_start;
    file.write_zeros(align_up(written, alignment) - written);
  }
  file.commit();
}

}  // namespace slmopt
