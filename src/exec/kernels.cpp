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

void rms_norm(const RowMatrix& x, const Eigen::VectorXf& weight, float eps, RowMatrix& y) {
  const int64_t n = x.cols();
  if (weight.size() != n)
    throw_error(ErrorKind::Internal, "rms_norm: rows have {} values, weight has {}", n, weight.size());
  if (&y != &x) y.resize(x.rows(), n);
  parallel_for(
      static_cast<size_t>(x.rows()),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) {
          const float* in = x.data() + r * n;
          float* out = y.data() + r * n;
          double sum_squares = 0;
          for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(in[i]) * in[i];
          const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(n) + eps));
          for (int64_t i = 0; i < n; ++i) out[i] = (in[i] * inv_rms) * weight[i];
        }
      },
      min_chunk_for(4 * n));
}

void swiglu_in_place(RowMatrix& gate, const RowMatrix& up) {
  if (gate.rows() != up.rows() || gate.cols() != up.cols())
    throw_error(ErrorKind::Internal, "swiglu: gate is {}x{}, up is {}x{}", gate.rows(), gate.cols(), up.rows(),
                up.cols());
  const int64_t n = gate.cols();
  parallel_for(
      static_cast<size_t>(gate.rows()),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) {
          float* g = gate.data() + r * n;
          const float* u = up.data() + r * n;
          for (int64_t i = 0; i < n; ++i) g[i] = g[i] * (1.0f / (1.0f + std::exp(-g[i]))) * u[i];
        }
      },
      min_chunk_for(16 * n));
}

}  // namespace slmopt
