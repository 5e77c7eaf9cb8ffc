// Round-to-nearest integer quantization of linear weights into IntQuantizedWeight (ir/int_weights.h): per block
// of `block_size` input columns (or per output channel), symmetric (scale = max|w| / (2^(bits−1) − 1), codes
// around 2^(bits−1)) or asymmetric (scale = (max − min) / (2^bits − 1), integer zero point = round(−min/scale)).
// This is the weight format of ONNX Runtime's MatMulNBits / DequantizeLinear exports; GPTQ and AWQ produce the
// same structure with better-chosen codes.
#pragma once

#include <cstdint>
#include <span>

#include "slmopt/ir/int_weights.h"
#include "slmopt/ir/model.h"

namespace slmopt {

struct IntQuantizeOptions {
  int bits = 4;             // 4 or 8
  int64_t block_size = 32;  // 0: one block per row (per-channel)
  bool symmetric = true;
};

// Quantizes a [rows, cols] float matrix. Deterministic; rows are independent (parallel over rows).
IntQuantizedWeight quantize_int_rtn(std::span<const float> weight, int64_t rows, int64_t cols,
                                    const IntQuantizeOptions& options);

// Quantizes every linear weight of the model (names::is_linear_weight; a tied output head stays float).
IntQuantizedWeights quantize_linear_weights_rtn(const Model& model, const IntQuantizeOptions& options);

// The codes of linear weights already stored as GGUF Q4_0 blocks (d·(q − 8), blocks of 32), repacked without
// loss as 4-bit, block-32, symmetric IntQuantizedWeights (scale = d): a Q4_0 model exports to MatMulNBits
// exactly. Tensors of other dtypes are skipped.
IntQuantizedWeights int_weights_from_q4_0(const Model& model);

// A copy of `model` (tensors shared where unchanged) whose quantized linear weights are replaced by their
// dequantized float values: what a consumer of the quantized export computes, for evaluating it with
// ModelRunner.
Model with_dequantized_weights(const Model& model, const IntQuantizedWeights& weights);

}  // namespace slmopt
