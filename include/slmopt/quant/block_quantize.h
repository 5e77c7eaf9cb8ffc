// Encoding float rows into GGUF block types (the decoders live in ir/block_formats.h).
//
// Every quantized DType has four encoders, described once in a table in block_quantize.cpp:
//   Encoder::Fast       slmopt's default. Per block it starts from llama.cpp's own encoding and polishes it with a
//                       few least-squares steps (rescale the integers, re-round, re-pick K sub-scales), keeping
//                       the polish only where Σ importance·(x − x̂)² (plain squared error without an importance
//                       vector) is strictly smaller: never worse than llama.cpp, at about llama.cpp's CPU cost
//                       (its scale searches run one trial per vector lane, bit-identical to the scalar order).
//   Encoder::Search     the exhaustive option: per block the better of llama.cpp's encoding and a much wider scale
//                       search (exact sweeps, affine fits); lowest error, several times llama.cpp's CPU time.
//   Encoder::Reference  llama.cpp's quantize_row_<type>_ref, byte for byte (importance ignored): the
//                       deterministic encoder GGUF files are usually compared with.
//   Encoder::Llama      what llama.cpp's ggml_quantize_chunk writes for the same row and importance.
// Importance vectors hold one non-negative weight per column (per element of a row), e.g. the mean squared
// input activation of a linear layer. All encoders are deterministic and rows are independent, so
// quantize_tensor gives the same bytes for any thread count.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "slmopt/ir/dtype.h"
#include "slmopt/ir/tensor.h"

namespace slmopt {

enum class Encoder { Fast, Search, Reference, Llama };

std::string_view encoder_name(Encoder encoder);
std::optional<Encoder> encoder_from_name(std::string_view name);  // "fast", "search", "reference", "llama"

// True for the block types slmopt can encode (every quantized DType).
bool can_encode(DType dtype);

// True for the types llama.cpp refuses to write without an importance matrix (IQ3_XXS, IQ2_XXS, IQ2_XS, IQ2_S,
// IQ1_M, IQ1_S: llama-quant.cpp's tensor_requires_imatrix, which exempts token_embd and output).
bool needs_importance(DType dtype);

// Encodes one row of n elements (a whole number of blocks) into row_bytes(dtype, n) bytes at dst. importance is
// null or n weights. Throws Error(BadInput) for non-finite values, values beyond the f16 range or negative
// importance, and Error(Unsupported) for types without an encoder.
void quantize_row(DType dtype, const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_row(Encoder encoder, DType dtype, const float* src, uint8_t* dst, int64_t n, const float* importance);

// Encodes every row of `src` (any dtype; rows are decoded to float first) into `dtype`, rows in parallel.
// F32, F16 and BF16 targets are plain conversions. importance_per_column is null or src.cols() weights.
// Errors name the tensor.
Tensor quantize_tensor(const Tensor& src, DType dtype, const float* importance_per_column,
                       Encoder encoder = Encoder::Fast);

// Per-row sums a streaming writer reports without a second pass over the tensor: Σ(x − x̂)², Σx², and the same
// weighted by the importance per column (zero without one).
struct RowErrorSums {
  double error = 0, energy = 0, weighted_error = 0, weighted_energy = 0;
};

// Encodes rows [row_begin, row_end) of `src` into `dst` (row_bytes(dtype, src.cols()) bytes per row), rows in
// parallel, exactly the bytes quantize_tensor writes for them. When `errors` is given it receives one
// RowErrorSums per row of the range. Errors name the tensor.
void quantize_rows(const Tensor& src, DType dtype, int64_t row_begin, int64_t row_end,
                   const float* importance_per_column, Encoder encoder, uint8_t* dst,
                   RowErrorSums* errors = nullptr);

// Σ w·(x − decode(q))² over n elements (w = importance, or 1 when null), accumulated in double.
double quantization_error(DType dtype, const float* src, const uint8_t* quantized, int64_t n,
                          const float* importance);

}  // namespace slmopt
