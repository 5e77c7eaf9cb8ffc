#include "slmopt/quant/input_statistics.h"

#include <algorithm>
#include <cmath>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"

namespace slmopt {

namespace {
constexpr int64_t kTile = 64;  // fixed column tiles: the summation order never depends on the thread count
}

InputStatistics::InputStatistics(int64_t columns)
    : xtx_(Eigen::MatrixXd::Zero(columns, columns)), abs_sum_(Eigen::VectorXd::Zero(columns)) {}

void InputStatistics::add(const RowMatrix& x) {
  const int64_t n = columns();
  if (x.cols() != n) throw_error(ErrorKind::Internal, "InputStatistics: {} columns, expected {}", x.cols(), n);
  const Eigen::MatrixXd xd = x.cast<double>();  // column-major copy: columns are contiguous
  const int64_t tiles = (n + kTile - 1) / kTile;
  parallel_for(static_cast<size_t>(tiles), [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      const int64_t c0 = static_cast<int64_t>(t) * kTile, c1 = std::min(n, c0 + kTile);
      xtx_.middleCols(c0, c1 - c0).noalias() += xd.transpose() * xd.middleCols(c0, c1 - c0);
      for (int64_t c = c0; c < c1; ++c) abs_sum_[c] += xd.col(c).cwiseAbs().sum();
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

double relative_output_error(std::span<const float> weight, std::span<const float> quantized, int64_t rows,
                             const Eigen::MatrixXd& gram) {
  const int64_t cols = gram.cols();
  if (static_cast<int64_t>(weight.size()) != rows * cols || quantized.size() != weight.size())
    throw_error(ErrorKind::Internal, "relative_output_error: sizes disagree");
  using Rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::MatrixXd w = Eigen::Map<const Rows>(weight.data(), rows, cols).cast<double>();
  const Eigen::MatrixXd d = w - Eigen::Map<const Rows>(quantized.data(), rows, cols).cast<double>();
  const double num = (d * gram).cwiseProduct(d).sum();
  const double den = (w * gram).cwiseProduct(w).sum();
  return den > 0 ? std::sqrt(std::max(0.0, num) / den) : 0.0;
}

}  // namespace slmopt
