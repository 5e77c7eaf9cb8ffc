// The numeric kernels of the forward pass, shared with passes that need the same arithmetic (AWQ's output
// error, GPTQ's layer replay): a linear layer, RMSNorm and SiLU.
//
// Determinism: linear() runs linear_stored's kernels (stored_linear.h): every output is a dot product in a
// fixed summation order and threads split output columns only, so results are bit-identical for any
// set_thread_count() value.
#pragma once

#include <cstdint>

#include "slmopt/exec/matrix.h"

namespace slmopt {

inline constexpr int64_t kLinearBlockCols = 64;

// y = x · weightᵀ (+ bias): x [T, in], weight [out, in] (the IR layout), bias [out] or null, y [T, out].
// Parallel over output columns.
void linear(const RowMatrix& x, const RowMatrix& weight, const float* bias, RowMatrix& y);

// y = x / sqrt(mean(x²) + eps) · weight, row by row, as Hugging Face's LlamaRMSNorm does it: the row is
// normalised in float first and the weight multiplied afterwards. y may alias x.
void rms_norm(const RowMatrix& x, const Eigen::VectorXf& weight, float eps, RowMatrix& y);

// silu(g) · u elementwise into g (the SwiGLU gate), with silu(g) = g · sigmoid(g).
void swiglu_in_place(RowMatrix& gate, const RowMatrix& up);

}  // namespace slmopt
