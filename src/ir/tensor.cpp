#include "slmopt/ir/tensor.h"

#include <cstring>
#include <limits>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_formats.h"

namespace slmopt {

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

size_t Tensor::bytes_for(const std::vector<int64_t>& shape, DType dtype) {
  // Shapes come from file headers: every product is overflow-checked, so a huge shape is an error rather than a
  // wrapped (small) byte count that a short file would satisfy.
  const auto too_large = [&] {
    throw_error(ErrorKind::BadInput, "shape {} in {} is too large", shape_to_string(shape), dtype_name(dtype));
  };
  uint64_t outer = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) {
    if (shape[i] < 0) throw_error(ErrorKind::BadInput, "negative dimension in shape {}", shape_to_string(shape));
    if (__builtin_mul_overflow(outer, static_cast<uint64_t>(shape[i]), &outer)) too_large();
  }
  const int64_t inner = shape.empty() ? 1 : shape.back();
  if (inner < 0) throw_error(ErrorKind::BadInput, "negative dimension in shape {}", shape_to_string(shape));
  const auto& t = traits(dtype);
  if (inner % t.block_size != 0) return row_bytes(dtype, inner);  // throws, naming the block size
  uint64_t row = 0, total = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(inner / t.block_size), static_cast<uint64_t>(t.block_bytes), &row) ||
      __builtin_mul_overflow(outer, row, &total) || total > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    too_large();
  return static_cast<size_t>(total);
}

Tensor Tensor::view(std::string name, std::vector<int64_t> shape, DType dtype, const uint8_t* data, size_t nbytes,
                    std::shared_ptr<const void> keepalive) {
  const size_t expected = bytes_for(shape, dtype);
  if (expected != nbytes)
    throw_error(ErrorKind::BadInput, "tensor '{}': shape {} in {} needs {} bytes, but {} are given", name,
                shape_to_string(shape), dtype_name(dtype), expected, nbytes);
  Tensor t;
  t.name_ = std::move(name);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.data_ = data;
  t.nbytes_ = nbytes;
  t.keepalive_ = std::move(keepalive);
  return t;
}

Tensor Tensor::rows_view(std::string name, int64_t row_begin, int64_t row_end) const {
  if (rank() != 2 || row_begin < 0 || row_end < row_begin || row_end > dim(0))
    throw_error(ErrorKind::Internal, "tensor '{}' {}: rows [{}, {}) are not a row range of a matrix", name_,
                shape_to_string(shape_), row_begin, row_end);
  const size_t row = row_bytes(dtype_, dim(1));
  return view(std::move(name), {row_end - row_begin, dim(1)}, dtype_, data_ + static_cast<size_t>(row_begin) * row,
              static_cast<size_t>(row_end - row_begin) * row, keepalive_);
}

Tensor Tensor::owned(std::string name, std::vector<int64_t> shape, DType dtype, std::vector<uint8_t> bytes) {
  auto storage = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  const uint8_t* data = storage->data();
  const size_t n = storage->size();
  return view(std::move(name), std::move(shape), dtype, data, n, std::move(storage));
}

Tensor Tensor::from_f32(std::string name, std::vector<int64_t> shape, std::span<const float> values) {
  return from_f32_as(std::move(name), std::move(shape), values, DType::F32);
}

Tensor Tensor::from_f32_as(std::string name, std::vector<int64_t> shape, std::span<const float> values,
                           DType dtype) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  if (static_cast<int64_t>(values.size()) != n)
    throw_error(ErrorKind::Internal, "tensor '{}': {} values for shape {}", name, values.size(),
                shape_to_string(shape));
  std::vector<uint8_t> bytes;
  switch (dtype) {
    case DType::F32:
      bytes.resize(values.size() * 4);
      if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());  // no null pointers (UBSan)
      break;
    case DType::F16:
    case DType::BF16: {
      bytes.resize(values.size() * 2);
      auto* out = reinterpret_cast<uint16_t*>(bytes.data());
      for (size_t i = 0; i < values.size(); ++i)
        out[i] = dtype == DType::F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
      break;
    }
    default:
      throw_error(ErrorKind::Internal, "tensor '{}': from_f32_as cannot encode {}", name, dtype_name(dtype));
  }
  return owned(std::move(name), std::move(shape), dtype, std::move(bytes));
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape_) n *= d;
  return n;
}

void Tensor::rows_to_f32(int64_t row_begin, int64_t row_end, float* out) const {
  const int64_t c = cols();
  const size_t rb = row_bytes(dtype_, c);
  for (int64_t r = row_begin; r < row_end; ++r)
    dequantize_row(dtype_, data_ + static_cast<size_t>(r) * rb, out + (r - row_begin) * c, c);
}

std::vector<float> Tensor::to_f32() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  if (!out.empty()) rows_to_f32(0, rows(), out.data());
  return out;
}

}  // namespace slmopt
