#include "slmopt/quant/weight_grid.h"

#include "slmopt/core/error.h"

namespace slmopt {

void WeightGrid::quantize_joint(int64_t, int64_t, const double*, const double*, float*) {
  throw_error(ErrorKind::Internal, "quantize_joint on a grid that rounds one element at a time");
}

void WeightGrid::quantize_column(int64_t row0, int64_t n, int64_t col, const float* values, float* out) {
  for (int64_t r = 0; r < n; ++r) out[r] = quantize(row0 + r, col, values[r]);
}

IntWeightGrid::IntWeightGrid(int64_t rows, int64_t cols, const IntGridSpec& spec) {
  spec.validate(cols, "integer grid");
  result_.spec = spec;
  result_.rows = rows;
  result_.cols = cols;
  result_.codes.assign(static_cast<size_t>(rows * cols), 0);
  result_.params.assign(static_cast<size_t>(rows * spec.groups(cols)), IntGroupParams{});
}

void IntWeightGrid::fit_group(int64_t row, int64_t group, std::span<const double> values) {
  const size_t i = static_cast<size_t>(row * result_.groups() + group);
  result_.params[i] = fit_int_group(result_.spec, values, clip_.empty() ? 1.0 : clip_[i]);
}

float IntWeightGrid::quantize(int64_t row, int64_t col, double value) {
  const IntGroupParams& p = result_.param(row, col);
  const int32_t code = p.quantize(value, result_.spec.max_code());
  result_.codes[static_cast<size_t>(row * result_.cols + col)] = static_cast<uint8_t>(code);
  return p.dequantize(code);
}

}  // namespace slmopt
