// Plain integer weight grids, the format of Hugging Face GPTQ and AWQ checkpoints:
//
//   w ≈ scale · (q − zero),   q ∈ [0, 2^bits − 1],   one (scale, zero) per output row and group of
//   `group_size` consecutive input columns (group_size −1: one group per row).
//
// Fit (GPTQ's min/max quantizer): the range [min(x, 0), max(x, 0)] of the group; asymmetric grids take
// scale = range / (2^bits − 1) and zero = round(−min / scale); symmetric grids take scale = 2·max|x| / (2^bits − 1)
// and zero = 2^(bits−1). Two deliberate details make the checkpoint reproduce these values exactly:
//   * scale is rounded to f16 before any code is chosen (checkpoints store f16 scales);
//   * zero is kept in [1, 2^bits − 1]: the classic GPTQ checkpoint stores zero − 1 in `bits` bits, so a zero
//     of 0 cannot be written (it would wrap to all ones).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slmopt/io/hf_gptq.h"
#include "slmopt/ir/int_weights.h"

namespace slmopt {

struct IntGridSpec {
  int bits = 4;              // 2, 3, 4 or 8
  int64_t group_size = 128;  // columns per group; -1: the whole row
  bool symmetric = false;

  int32_t max_code() const { return (1 << bits) - 1; }
  // Columns per group for a row of `cols` columns.
  int64_t group_columns(int64_t cols) const { return group_size < 0 ? cols : group_size; }
  int64_t groups(int64_t cols) const;
  // Throws Error(Usage) naming `what` for unsupported bits, a group size < 1 (other than −1) or an empty row. A row
  // that is not a whole number of groups ends in a shorter group (ceil(cols / group_size) groups, as GPTQ).
  void validate(int64_t cols, const std::string& what) const;
  std::string describe() const;  // "int4 g128 asym"
};

struct IntGroupParams {
  float scale = 1.0f;  // f16-representable, > 0
  int32_t zero = 0;

  float dequantize(int32_t code) const { return scale * static_cast<float>(code - zero); }
  int32_t quantize(double value, int32_t max_code) const;
};

// Fits one group's parameters to its values (clip: the range is multiplied by it first, AWQ's clipping search).
IntGroupParams fit_int_group(const IntGridSpec& spec, std::span<const double> values, double clip = 1.0);
IntGroupParams fit_int_group(const IntGridSpec& spec, std::span<const float> values, double clip = 1.0);

// One linear weight [rows, cols] on an integer grid: codes and per-(row, group) parameters.
struct GridQuantizedWeight {
  IntGridSpec spec;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;          // [rows, cols]
  std::vector<IntGroupParams> params;  // [rows, groups]

  int64_t groups() const { return spec.groups(cols); }
  const IntGroupParams& param(int64_t row, int64_t col) const {
    return params[static_cast<size_t>(row * groups() + col / spec.group_columns(cols))];
  }
  std::vector<float> dequantize() const;  // [rows, cols]
  // The checkpoint form (io/hf_gptq.h): same codes, scales and zeros.
  HfIntWeight to_hf() const;
  // The ONNX Runtime form (ir/int_weights.h, MatMulNBits / DequantizeLinear): same codes, explicit zero points.
  IntQuantizedWeight to_int_weight() const;
};

// Round-to-nearest on the min/max grid of every group (the baseline GPTQ and AWQ are measured against).
GridQuantizedWeight quantize_grid_rtn(std::span<const float> weight, int64_t rows, int64_t cols,
                                    const IntGridSpec& spec);

}  // namespace slmopt
