// The numeric kernels of the forward pass, shared with passes that need the same arithmetic (AWQ's output
// error, GPTQ's layer replay): a linear layer on a float matrix, the norms (RMSNorm, LayerNorm), the MLP
// activations and soft-capping.
//
// Determinism: linear() runs linear_stored's kernels (stored_linear.h): every output is a dot product in a
// fixed summation order and threads split output columns only, so results are bit-identical for any
// set_thread_count() value. Every other kernel works row
// by row (or element by element) with a fixed order.
#pragma once

#include <cstdint>

#include "slmopt/exec/matrix.h"

namespace slmopt {

inline constexpr int64_t kLinearBlockCols = 64;

// y = x · weightᵀ (+ bias): x [T, in], weight [out, in] (the IR layout), bias [out] or null, y [T, out].
// Parallel over output columns.
void linear(const RowMatrix& x, const RowMatrix& weight, const float* bias, RowMatrix& y);

// y = x / sqrt(mean(x²) + eps) · weight, row by row, as Hugging Face's LlamaRMSNorm does it: the row is
// normalised in float first and the weight multiplied afterwards (the mean square in double). y may alias x.
void rms_norm(const RowMatrix& x, const Eigen::VectorXf& weight, float eps, RowMatrix& y);

// rms_norm over each group of weight.size() consecutive values of every row (per-head q/k norms: a row of
// n_heads · head_dim values normalised head by head). x.cols() must be a multiple of weight.size(). In place.
void rms_norm_groups(RowMatrix& x, const Eigen::VectorXf& weight, float eps);

// y = (x − mean) / sqrt(var + eps) · weight (+ bias), row by row (mean and variance in double). bias may be
// empty (LayerNorm without bias). y may alias x.
void layer_norm(const RowMatrix& x, const Eigen::VectorXf& weight, const Eigen::VectorXf& bias, float eps,
                RowMatrix& y);

// silu(g) · u elementwise into g (the SwiGLU gate), with silu(g) = g · sigmoid(g).
void swiglu_in_place(RowMatrix& gate, const RowMatrix& up);

// gelu_tanh(g) · u elementwise into g (GeGLU, Gemma's gelu_pytorch_tanh).
void geglu_tanh_in_place(RowMatrix& gate, const RowMatrix& up);

// GELU, tanh approximation (GPT-2 / Phi-2 "gelu_new", PyTorch approximate="tanh"), in place:
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
void gelu_tanh_in_place(RowMatrix& x);

// x → cap · tanh(x / cap) elementwise (Gemma-2's attention and final-logit soft-capping), in place.
void softcap_in_place(RowMatrix& x, float cap);

}  // namespace slmopt
