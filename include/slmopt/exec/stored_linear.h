// Matrix products and row gathers that read weights in their stored type (F32, F16, BF16, every GGUF block type),
// so the forward pass needs no float copy of the model: RAM = mapped weights + activations + KV cache.
//
// Determinism: every output is one dot product summed in a fixed order (16 interleaved fused multiply-add
// lanes folded by a fixed tree, exec/linear_kernels.h); work is split over output rows only. So the thread
// count, the number of tokens in x (a row's result is the same alone or in a batch of 512) and the SIMD set
// (AVX-512, AVX2 or portable: cpu_features.h, SLMOPT_KERNEL) never change a bit. F32 weights give the same
// bits as linear() in kernels.h, which runs the same kernels.
#pragma once

#include <cstdint>
#include <span>

#include "slmopt/exec/matrix.h"
#include "slmopt/ir/tensor.h"

namespace slmopt {

// y = x · weightᵀ (+ bias): x [T, in], weight [out, in] in any stored dtype, bias [out] or null, y [T, out].
void linear_stored(const RowMatrix& x, const Tensor& weight, const float* bias, RowMatrix& y);

// The same product for a float weight held in memory: weight is [out, x.cols()] row-major.
void linear_f32(const RowMatrix& x, const float* weight, int64_t out, const float* bias, RowMatrix& y);

// Decodes `rows` rows of `cols` elements stored as `dtype` (row r at src + r·row_bytes) into dst (row r at
// dst + r·cols) with the active kernel set's SIMD decoders: bit-identical to ir/block_formats' dequantize_row
// (which it falls back to for types without one). The quantizers use it to measure their error.
void decode_stored_rows(DType dtype, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, float* dst);

// out.row(i) = table.row(ids[i]) decoded to float: table [rows, cols] in any stored dtype. Throws
// Error(BadInput) naming the table for an id outside [0, rows).
void gather_rows(const Tensor& table, std::span<const int32_t> ids, RowMatrix& out);

}  // namespace slmopt
