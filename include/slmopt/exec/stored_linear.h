// Matrix products and row gathers that read weights in their stored type (F32, F16, BF16, every GGUF block type),
// so the forward pass needs no float copy of the model: RAM = mapped weights + activations + KV cache.
//
// Determinism: work is split over fixed blocks of kLinearBlockCols output rows of the weight (never over the
// reduction), and each block's arithmetic depends only on the shapes, so any thread count gives the same bits.
// For F32 weights the result is bit-identical to linear() in kernels.h.
#pragma once

#include <cstdint>
#include <span>

#include "slmopt/exec/matrix.h"
#include "slmopt/ir/tensor.h"

namespace slmopt {

// y = x · weightᵀ (+ bias): x [T, in], weight [out, in] in any stored dtype, bias [out] or null, y [T, out].
void linear_stored(const RowMatrix& x, const Tensor& weight, const float* bias, RowMatrix& y);

// out.row(i) = table.row(ids[i]) decoded to float: table [rows, cols] in any stored dtype. Throws
// Error(BadInput) naming the table for an id outside [0, rows).
void gather_rows(const Tensor& table, std::span<const int32_t> ids, RowMatrix& out);

}  // namespace slmopt
