#include "slmopt/quant/input_statistics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/huge_pages.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/gemm.h"

namespace slmopt {

namespace {
constexpr int64_t kTile = 64;  // fixed column tiles: the summation order never depends on the thread count
}

InputStatistics::InputStatistics(int64_t columns)
    : xtx_(Eigen::MatrixXd::Zero(columns, columns)), abs_sum_(Eigen::VectorXd::Zero(columns)) {}

void add_product_to_total(Eigen::MatrixXd& total, const float* product, bool upper_only) {
  const int64_t n = total.cols();
  const int64_t tiles = (n + kTile - 1) / kTile;
  parallel_for(static_cast<size_t>(tiles), [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      const int64_t c0 = static_cast<int64_t>(t) * kTile, c1 = std::min(n, c0 + kTile);
      for (int64_t i = 0; i < n; ++i) {
        const float* row = product + i * n;
        // Row i of the total: (i, j) for j ≥ i from the product's row i, j < i mirrored from row j.
        const int64_t mirrored_end = upper_only ? std::min(c1, std::max(c0, i)) : c0;
        for (int64_t j = c0; j < mirrored_end; ++j) total(i, j) += static_cast<double>(product[j * n + i]);
        for (int64_t j = mirrored_end; j < c1; ++j) total(i, j) += static_cast<double>(row[j]);
      }
    }
  });
}

void InputStatistics::add(const RowMatrix& x) {
  const int64_t n = columns();
  if (x.cols() != n) throw_error(ErrorKind::Internal, "InputStatistics: {} columns, expected {}", x.cols(), n);
  // xᵀx of this call as an F32 product (exec/gemm.h: upper triangle, one fma chain over the rows per element),
  // then added to the double total: F32 speed, with rounding that grows with one call's rows, not all of them.
  HugeVector<float> gram(static_cast<size_t>(n * n), 0.0f);
  gemm_accumulate_parallel({n, n, x.rows(), x.data(), 1, n, x.data(), n, gram.data(), n}, GemmTriangle::UpperOnly);
  add_product_to_total(xtx_, gram.data(), /*upper_only=*/true);
  const int64_t tiles = (n + kTile - 1) / kTile;
  parallel_for(static_cast<size_t>(tiles), [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      const int64_t c0 = static_cast<int64_t>(t) * kTile, c1 = std::min(n, c0 + kTile);
      for (int64_t j = c0; j < c1; ++j) {
        double a = 0;
        for (int64_t r = 0; r < x.rows(); ++r) a += std::abs(static_cast<double>(x(r, j)));
        abs_sum_[j] += a;
      }
    }
  });
  rows_ += x.rows();
}

Eigen::MatrixXd InputStatistics::hessian() const {
  return rows_ == 0 ? Eigen::MatrixXd(xtx_) : Eigen::MatrixXd(xtx_ * (2.0 / static_cast<double>(rows_)));
}

Eigen::VectorXd InputStatistics::mean_abs() const {
  return rows_ == 0 ? Eigen::VectorXd(abs_sum_) : Eigen::VectorXd(abs_sum_ / static_cast<double>(rows_));
}

namespace {

void check_sizes(std::span<const float> weight, std::span<const float> quantized, int64_t rows, int64_t cols,
                 const char* what) {
  if (static_cast<int64_t>(weight.size()) != rows * cols || quantized.size() != weight.size())
    throw_error(ErrorKind::Internal, "{}: sizes disagree", what);
}

}  // namespace

OutputErrorForm::OutputErrorForm(const Eigen::MatrixXd& gram)
    : cols_(gram.cols()), gram_(static_cast<size_t>(gram.cols() * gram.cols())) {
  for (int64_t j = 0; j < cols_; ++j)
    for (int64_t i = 0; i < cols_; ++i) gram_[static_cast<size_t>(i * cols_ + j)] = static_cast<float>(gram(i, j));
}

// The quadratic forms need rows·cols² multiply-adds each, as much as the GPTQ sweep itself, so they are F32
// products on exec/gemm.h (one fma chain per element, in increasing k) with the per-tile sums in double. Rows
// go in fixed tiles summed in tile order: the same bits for any thread count.
double OutputErrorForm::operator()(std::span<const float> weight, std::span<const float> quantized, int64_t rows,
                                   double* weight_form) const {
  const int64_t cols = cols_;
  check_sizes(weight, quantized, rows, cols, "OutputErrorForm");
  const int64_t tiles = (rows + kTile - 1) / kTile;
  std::vector<double> nums(static_cast<size_t>(tiles)), dens(static_cast<size_t>(tiles));
  parallel_for(static_cast<size_t>(tiles), [&](size_t begin, size_t end) {
    std::vector<float> d(static_cast<size_t>(kTile * cols)), product(static_cast<size_t>(kTile * cols));
    // Σ_r v_r·G·v_rᵀ over the tile's rows of v.
    const auto form = [&](const float* v, int64_t n) {
      std::fill(product.begin(), product.begin() + n * cols, 0.0f);
      gemm_accumulate({n, cols, cols, v, cols, 1, gram_.data(), cols, product.data(), cols});
      double sum = 0;
      for (int64_t e = 0; e < n * cols; ++e) sum += static_cast<double>(product[static_cast<size_t>(e)]) * v[e];
      return sum;
    };
    for (size_t t = begin; t < end; ++t) {
      const int64_t r0 = static_cast<int64_t>(t) * kTile, n = std::min(rows, r0 + kTile) - r0;
      const float* w = weight.data() + r0 * cols;
      const float* q = quantized.data() + r0 * cols;
      for (int64_t e = 0; e < n * cols; ++e) d[static_cast<size_t>(e)] = w[e] - q[e];
      nums[t] = form(d.data(), n);
      if (weight_form) dens[t] = form(w, n);
    }
  });
  double num = 0, den = 0;
  for (int64_t t = 0; t < tiles; ++t) num += nums[static_cast<size_t>(t)], den += dens[static_cast<size_t>(t)];
  if (weight_form) *weight_form = den;
  return num;
}

double relative_output_error(std::span<const float> weight, std::span<const float> quantized, int64_t rows,
                             const Eigen::MatrixXd& gram, int64_t sample_rows) {
  const int64_t cols = gram.cols();
  check_sizes(weight, quantized, rows, cols, "relative_output_error");
  if (sample_rows > 0 && rows > 2 * sample_rows) {
    std::vector<float> w(static_cast<size_t>(sample_rows * cols)), q(w.size());
    for (int64_t i = 0; i < sample_rows; ++i) {
      const size_t from = static_cast<size_t>(i * rows / sample_rows * cols), to = static_cast<size_t>(i * cols);
      std::copy_n(weight.begin() + static_cast<std::ptrdiff_t>(from), cols, w.begin() + static_cast<std::ptrdiff_t>(to));
      std::copy_n(quantized.begin() + static_cast<std::ptrdiff_t>(from), cols, q.begin() + static_cast<std::ptrdiff_t>(to));
    }
    return relative_output_error(w, q, sample_rows, gram);
  }
  double den = 0;
  const double num = OutputErrorForm(gram)(weight, quantized, rows, &den);
  return den > 0 ? std::sqrt(std::max(0.0, num) / den) : 0.0;
}

}  // namespace slmopt
