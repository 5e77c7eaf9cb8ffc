// Round-to-nearest integer block quantization (see int_quantize.h). Scales are computed in float from the
// block's extremes; codes are clamped to the representable range, so a block of zeros gets scale 0 and codes
// at the zero point.
#include "slmopt/quant/int_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/block_structs.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {

IntQuantizedWeight quantize_int_rtn(std::span<const float> weight, int64_t rows, int64_t cols,
                                    const IntQuantizeOptions& options) {
  if (options.bits != 4 && options.bits != 8)
    throw_error(ErrorKind::Usage, "integer quantization supports 4 or 8 bits, not {}", options.bits);
  if (rows <= 0 || cols <= 0 || weight.size() != static_cast<size_t>(rows * cols))
    throw_error(ErrorKind::Internal, "quantize_int_rtn: {} values for shape [{}, {}]", weight.size(), rows, cols);
  IntQuantizedWeight q;
  q.bits = options.bits;
  q.rows = rows;
  q.cols = cols;
  q.block_size = options.block_size <= 0 ? cols : options.block_size;
  const int64_t nb = q.blocks();
  q.codes.resize(static_cast<size_t>(rows * cols));
  q.scales.resize(static_cast<size_t>(rows * nb));
  if (!options.symmetric) q.zeros.resize(static_cast<size_t>(rows * nb));
  const int max_code = (1 << options.bits) - 1;
  const int mid = 1 << (options.bits - 1);
  parallel_for(
      static_cast<size_t>(rows),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) {
          const float* row = weight.data() + r * static_cast<size_t>(cols);
          uint8_t* codes = q.codes.data() + r * static_cast<size_t>(cols);
          for (int64_t b = 0; b < nb; ++b) {
            const int64_t c0 = b * q.block_size, c1 = std::min(cols, c0 + q.block_size);
            float lo = 0.0f, hi = 0.0f, amax = 0.0f;
            for (int64_t c = c0; c < c1; ++c) {
              lo = std::min(lo, row[c]);
              hi = std::max(hi, row[c]);
              amax = std::max(amax, std::fabs(row[c]));
            }
            float scale;
            int zero;
            if (options.symmetric) {
              scale = amax / static_cast<float>(mid - 1);
              zero = mid;
            } else {
              scale = (hi - lo) / static_cast<float>(max_code);
              zero = scale > 0 ? std::clamp(static_cast<int>(std::lround(-lo / scale)), 0, max_code) : mid;
              q.zeros[r * static_cast<size_t>(nb) + static_cast<size_t>(b)] = static_cast<uint8_t>(zero);
            }
            q.scales[r * static_cast<size_t>(nb) + static_cast<size_t>(b)] = scale;
            const float inv = scale > 0 ? 1.0f / scale : 0.0f;
            for (int64_t c = c0; c < c1; ++c) {
              const int code = static_cast<int>(std::lround(row[c] * inv)) + zero;
              codes[c] = static_cast<uint8_t>(std::clamp(code, 0, max_code));
            }
          }
        }
      },
      8);
  return q;
}

IntQuantizedWeights quantize_linear_weights_rtn(const Model& model, const IntQuantizeOptions& options) {
  IntQuantizedWeights out;
  for (const auto& [name, tensor] : model.tensors()) {
    if (!names::is_linear_weight(name) || tensor.rank() != 2) continue;
    const std::vector<float> values = tensor.to_f32();
    out.emplace(name, quantize_int_rtn(values, tensor.dim(0), tensor.dim(1), options));
  }
  return out;
}

IntQuantizedWeights int_weights_from_q4_0(const Model& model) {
  IntQuantizedWeights out;
  for (const auto& [name, t] : model.tensors()) {
    if (t.dtype() != DType::Q4_0 || t.rank() != 2 || !names::is_linear_weight(name)) continue;
    IntQuantizedWeight q;
    q.bits = 4;
    q.rows = t.dim(0);
    q.cols = t.dim(1);
    q.block_size = blocks::kQK;
    const int64_t nb = q.blocks();
    if (t.nbytes() != static_cast<size_t>(q.rows * nb) * sizeof(blocks::Q4_0))
      throw_error(ErrorKind::BadInput, "tensor '{}': {} bytes for Q4_0 shape {}", name, t.nbytes(),
                  shape_to_string(t.shape()));
    q.codes.resize(static_cast<size_t>(q.rows * q.cols));
    q.scales.resize(static_cast<size_t>(q.rows * nb));
    for (int64_t b = 0; b < q.rows * nb; ++b) {
      blocks::Q4_0 block;
      std::memcpy(&block, t.data() + static_cast<size_t>(b) * sizeof(block), sizeof(block));
      q.scales[static_cast<size_t>(b)] = f16_to_f32(block.d);
      uint8_t* codes = q.codes.data() + b * blocks::kQK;  // rows are whole blocks, so blocks tile the codes
      for (int j = 0; j < blocks::kQK / 2; ++j) {
        codes[j] = block.qs[j] & 0x0f;
        codes[j + blocks::kQK / 2] = block.qs[j] >> 4;
      }
    }
    out.emplace(name, std::move(q));
  }
  return out;
}

Model with_dequantized_weights(const Model& model, const IntQuantizedWeights& weights) {
  Model copy = model;
  for (const auto& [name, q] : weights) {
    const Tensor& original = model.tensor(name);
    if (original.rank() != 2 || original.dim(0) != q.rows || original.dim(1) != q.cols)
      throw_error(ErrorKind::Internal, "{}: quantized weight [{}, {}] does not match tensor shape {}", name, q.rows,
                  q.cols, shape_to_string(original.shape()));
    const std::vector<float> values = q.dequantize();
    copy.set(Tensor::from_f32(name, {q.rows, q.cols}, values));
  }
  return copy;
}

}  // namespace slmopt
