// Kernels of the forward pass. Every parallel split here is over independent output elements (column blocks
// of a product, rows of a norm), never over a sum, so the thread count cannot change a single bit.
#include "slmopt/exec/kernels.h"

#include <algorithm>
#include <cmath>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/stored_linear.h"
#include "work_split.h"

namespace slmopt {

void linear(const RowMatrix& x, const RowMatrix& weight, const float* bias, RowMatrix& y) {
  if (x.cols() != weight.cols())
    throw_error(ErrorKind::Internal, "linear: input has {} columns, weight expects {}", x.cols(), weight.cols());
  linear_f32(x, weight.data(), weight.rows(), bias, y);
}

namespace {

// One row of RMSNorm: the mean square in double, the row scaled in float, then weighted.
inline void rms_norm_row(const float* in, float* out, int64_t n, const float* weight, float eps) {
  double sum_squares = 0;
  for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(in[i]) * in[i];
  const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = (in[i] * inv_rms) * weight[i];
}

// Applies f to every element, in parallel over fixed chunks of elements.
template <typename F>
void elementwise(float* d, int64_t n, int64_t flops_per_element, F f) {
  parallel_for(
      static_cast<size_t>(n),
      [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) d[i] = f(d[i]);
      },
      min_chunk_for(flops_per_element));
}

inline float gelu_tanh(float v) {
  constexpr float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
}

// gate = activation(gate) * up, element by element, in parallel over fixed chunks of rows: the gated FFN units
// (SwiGLU, GeGLU). flops_per_element sizes the chunks.
template <typename Activation>
void gated_in_place(RowMatrix& gate, const RowMatrix& up, const char* what, int64_t flops_per_element,
                    Activation activation) {
  if (gate.rows() != up.rows() || gate.cols() != up.cols())
    throw_error(ErrorKind::Internal, "{}: gate is {}x{}, up is {}x{}", what, gate.rows(), gate.cols(), up.rows(),
                up.cols());
  const int64_t n = gate.cols();
  parallel_for(
      static_cast<size_t>(gate.rows()),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) {
          float* g = gate.data() + r * n;
          const float* u = up.data() + r * n;
          for (int64_t i = 0; i < n; ++i) g[i] = activation(g[i]) * u[i];
        }
      },
      min_chunk_for(flops_per_element * n));
}

}  // namespace

void rms_norm(const RowMatrix& x, const Eigen::VectorXf& weight, float eps, RowMatrix& y) {
  const int64_t n = x.cols();
  if (weight.size() != n)
    throw_error(ErrorKind::Internal, "rms_norm: rows have {} values, weight has {}", n, weight.size());
  if (&y != &x) y.resize(x.rows(), n);
  parallel_for(
      static_cast<size_t>(x.rows()),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) rms_norm_row(x.data() + r * n, y.data() + r * n, n, weight.data(), eps);
      },
      min_chunk_for(4 * n));
}

void rms_norm_groups(RowMatrix& x, const Eigen::VectorXf& weight, float eps) {
  const int64_t g = weight.size();
  if (g == 0 || x.cols() % g != 0)
    throw_error(ErrorKind::Internal, "rms_norm_groups: rows of {} values do not split into groups of {}", x.cols(), g);
  const int64_t groups = x.size() / g;
  parallel_for(
      static_cast<size_t>(groups),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) rms_norm_row(x.data() + r * g, x.data() + r * g, g, weight.data(), eps);
      },
      min_chunk_for(4 * g));
}

void layer_norm(const RowMatrix& x, const Eigen::VectorXf& weight, const Eigen::VectorXf& bias, float eps,
                RowMatrix& y) {
  const int64_t n = x.cols();
  if (weight.size() != n || (bias.size() != 0 && bias.size() != n))
    throw_error(ErrorKind::Internal, "layer_norm: rows have {} values, weight {} and bias {}", n, weight.size(),
                bias.size());
  if (&y != &x) y.resize(x.rows(), n);
  const bool has_bias = bias.size() != 0;
  parallel_for(
      static_cast<size_t>(x.rows()),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) {
          const float* in = x.data() + r * n;
          float* out = y.data() + r * n;
          double sum = 0, sum_sq = 0;
          for (int64_t i = 0; i < n; ++i) sum += in[i];
          const double mean = sum / static_cast<double>(n);
          for (int64_t i = 0; i < n; ++i) sum_sq += (in[i] - mean) * (in[i] - mean);
          const float mean_f = static_cast<float>(mean);
          const float inv_std = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
          for (int64_t i = 0; i < n; ++i) {
            const float v = (in[i] - mean_f) * inv_std * weight[i];
            out[i] = has_bias ? v + bias[i] : v;
          }
        }
      },
      min_chunk_for(6 * n));
}

void swiglu_in_place(RowMatrix& gate, const RowMatrix& up) {
  gated_in_place(gate, up, "swiglu", 16, [](float g) { return g * (1.0f / (1.0f + std::exp(-g))); });
}

void geglu_tanh_in_place(RowMatrix& gate, const RowMatrix& up) {
  gated_in_place(gate, up, "geglu", 20, gelu_tanh);
}

void gelu_tanh_in_place(RowMatrix& x) { elementwise(x.data(), x.size(), 20, gelu_tanh); }

void softcap_in_place(RowMatrix& x, float cap) {
  elementwise(x.data(), x.size(), 20, [cap](float v) { return cap * std::tanh(v / cap); });
}

}  // namespace slmopt
