// An IR tensor: a name, a shape in PyTorch order (outermost first: a linear weight is [out, in]), an element
// type, and bytes that are either owned or a view into a mapped file (kept alive by a shared handle), so a
// loaded model costs no copy until a pass writes a new tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "slmopt/ir/dtype.h"

namespace slmopt {

class Tensor {
 public:
  Tensor() = default;

  // A view of bytes owned by `keepalive` (typically a MappedFile). Checks that the byte count fits the shape.
  static Tensor view(std::string name, std::vector<int64_t> shape, DType dtype, const uint8_t* data, size_t nbytes,
                     std::shared_ptr<const void> keepalive);
  static Tensor owned(std::string name, std::vector<int64_t> shape, DType dtype, std::vector<uint8_t> bytes);
  static Tensor from_f32(std::string name, std::vector<int64_t> shape, std::span<const float> values);
  // Stores float values converted to `dtype` (F32, F16 or BF16; quantized types go through quant/).
  static Tensor from_f32_as(std::string name, std::vector<int64_t> shape, std::span<const float> values,
                            DType dtype);

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const std::vector<int64_t>& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  const uint8_t* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  bool empty() const { return data_ == nullptr && nbytes_ == 0 && shape_.empty(); }

  int64_t numel() const;
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  // For 2-D (or higher) tensors: the innermost dimension and the product of the others.
  int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }

  // Rows [row_begin, row_end) of a 2-D tensor as a view named `name` sharing this tensor's bytes (no copy), e.g.
  // one projection of a fused QKV matrix. Any dtype: a row is a whole number of blocks.
  Tensor rows_view(std::string name, int64_t row_begin, int64_t row_end) const;

  // Decodes every element to float (any dtype, quantized ones through ir/block_formats).
  std::vector<float> to_f32() const;
  // Decodes rows [row_begin, row_end) into out (size (row_end-row_begin)*cols()).
  void rows_to_f32(int64_t row_begin, int64_t row_end, float* out) const;

  // Number of bytes `shape` needs in `dtype`; throws Error(BadInput) when the innermost dim is not a whole
  // number of blocks.
  static size_t bytes_for(const std::vector<int64_t>& shape, DType dtype);

 private:
  std::string name_;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::F32;
  const uint8_t* data_ = nullptr;
  size_t nbytes_ = 0;
  std::shared_ptr<const void> keepalive_;
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace slmopt
