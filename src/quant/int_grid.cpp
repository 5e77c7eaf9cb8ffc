#include "slmopt/quant/int_grid.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/parallel.h"

namespace slmopt {

int64_t IntGridSpec::groups(int64_t cols) const {
  const int64_t g = group_columns(cols);
  return g <= 0 ? 0 : (cols + g - 1) / g;
}

void IntGridSpec::validate(int64_t cols, const std::string& what) const {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw_error(ErrorKind::Usage, "{}: {} bits is not an integer grid slmopt writes (2, 3, 4 or 8)", what, bits);
  if (group_size == 0 || group_size < -1)
    throw_error(ErrorKind::Usage, "{}: group size {} (use a positive size or -1 for whole rows)", what, group_size);
  if (cols < 1) throw_error(ErrorKind::Usage, "{}: a row of {} input columns", what, cols);
  // A row that is not a whole number of groups ends in a shorter group (GPTQ's ceil(in / group_size) groups; the
  // same as padding the row with zeros, which a min/max fit that always spans 0 ignores).
}

std::string IntGridSpec::describe() const {
  return fmt::format("int{} g{} {}", bits, group_size, symmetric ? "sym" : "asym");
}

int32_t IntGroupParams::quantize(double value, int32_t max_code) const {
  const double q = std::nearbyint(value / static_cast<double>(scale)) + zero;
  return static_cast<int32_t>(std::clamp(q, 0.0, static_cast<double>(max_code)));
}

namespace {

// The f16 value nearest to x, never zero (a zero scale would make every code meaningless).
float f16_scale(double x) {
  float s = f16_to_f32(f32_to_f16(static_cast<float>(x)));
  const float smallest = f16_to_f32(1);  // 2^-24
  return s > 0 && std::isfinite(s) ? s : (std::isfinite(s) ? smallest : 65504.0f);
}

template <typename T>
IntGroupParams fit(const IntGridSpec& spec, std::span<const T> values, double clip) {
  double lo = 0, hi = 0;
  for (T v : values) {
    lo = std::min(lo, static_cast<double>(v));
    hi = std::max(hi, static_cast<double>(v));
  }
  lo *= clip;
  hi *= clip;
  const int32_t max_code = spec.max_code();
  IntGroupParams p;
  if (spec.symmetric) {
    const double m = std::max(-lo, hi);
    p.scale = f16_scale(m > 0 ? 2 * m / max_code : 2.0 / max_code);
    p.zero = (max_code + 1) / 2;
    return p;
  }
  if (lo == 0 && hi == 0) lo = -1, hi = 1;  // GPTQ's convention for an all-zero group
  p.scale = f16_scale((hi - lo) / max_code);
  p.zero = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / p.scale), 1.0, static_cast<double>(max_code)));
  return p;
}

}  // namespace

IntGroupParams fit_int_group(const IntGridSpec& spec, std::span<const double> values, double clip) {
  return fit(spec, values, clip);
}
IntGroupParams fit_int_group(const IntGridSpec& spec, std::span<const float> values, double clip) {
  return fit(spec, values, clip);
}

std::vector<float> GridQuantizedWeight::dequantize() const {
  std::vector<float> out(codes.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      out[i] = param(r, c).dequantize(codes[i]);
    }
  return out;
}

HfIntWeight GridQuantizedWeight::to_hf() const {
  HfIntWeight w{spec.bits, spec.group_columns(cols), spec.symmetric, rows, cols, codes, {}, {}};
  w.scales.reserve(params.size());
  w.zeros.reserve(params.size());
  for (const IntGroupParams& p : params) w.scales.push_back(p.scale), w.zeros.push_back(p.zero);
  return w;
}

GridQuantizedWeight quantize_grid_rtn(std::span<const float> weight, int64_t rows, int64_t cols,
                                    const IntGridSpec& spec) {
  spec.validate(cols, "RTN");
  GridQuantizedWeight q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.codes.resize(static_cast<size_t>(rows * cols));
  const int64_t gc = spec.group_columns(cols), groups = spec.groups(cols);
  q.params.resize(static_cast<size_t>(rows * groups));
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        const float* w = weight.data() + r * cols + g * gc;
        const int64_t n = std::min(gc, cols - g * gc);  // the last group may be shorter
        const IntGroupParams p = fit_int_group(spec, std::span<const float>(w, static_cast<size_t>(n)));
        q.params[r * groups + g] = p;
        for (int64_t c = 0; c < n; ++c)
          q.codes[r * cols + g * gc + c] = static_cast<uint8_t>(p.quantize(w[c], spec.max_code()));
      }
  });
  return q;
}

}  // namespace slmopt

namespace slmopt {

IntQuantizedWeight GridQuantizedWeight::to_int_weight() const {
  if (spec.bits != 4 && spec.bits != 8)
    throw_error(ErrorKind::Usage, "ONNX Runtime's integer weights take 4 or 8 bits, not {}", spec.bits);
  IntQuantizedWeight w;
  w.bits = spec.bits;
  w.rows = rows;
  w.cols = cols;
  w.block_size = spec.group_columns(cols);
  w.codes = codes;
  w.scales.reserve(params.size());
  w.zeros.reserve(params.size());
  for (const IntGroupParams& p : params) {
    w.scales.push_back(p.scale);
    w.zeros.push_back(static_cast<uint8_t>(p.zero));
  }
  return w;
}

}  // namespace slmopt
