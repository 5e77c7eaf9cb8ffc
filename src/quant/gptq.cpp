// GPTQ solver. See gptq.h for the algorithm; this file is the plain transcription plus the bookkeeping that
// keeps it deterministic: a fixed row tiling, stable act-order sorting, double precision.
#include "slmopt/quant/gptq.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include <Eigen/Cholesky>

#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/parallel.h"

namespace slmopt {

namespace {

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kRowTile = 64;

// U with H⁻¹ = UᵀU for H + damp·mean(diag)·I, raising damp ×10 until both factorisations succeed.
Eigen::MatrixXd inverse_cholesky_upper(const Eigen::MatrixXd& h, const GptqOptions& options, GptqStats& stats,
                                       const std::string& what) {
  const int64_t n = h.cols();
  const double mean_diag = h.diagonal().mean();
  double damp = options.damp_percent;
  for (int attempt = 0;; ++attempt) {
    Eigen::MatrixXd damped = h;
    damped.diagonal().array() += damp * mean_diag;
    Eigen::LLT<Eigen::MatrixXd> llt(damped);
    if (llt.info() == Eigen::Success) {
      Eigen::MatrixXd inv = llt.solve(Eigen::MatrixXd::Identity(n, n));
      inv = (inv + inv.transpose()) * 0.5;  // exact symmetry for the second factorisation
      Eigen::LLT<Eigen::MatrixXd> llt_inv(inv);
      if (llt_inv.info() == Eigen::Success) {
        stats.damp_percent_used = damp;
        stats.damp_raises = attempt;
        return llt_inv.matrixU();
      }
    }
    if (attempt >= options.max_damp_raises)
      throw_error(ErrorKind::Internal, "GPTQ: {}: Hessian not positive definite even with damp {}", what, damp);
    spdlog::warn("GPTQ: {}: Cholesky failed with damp {:g}; retrying with {:g}", what, damp, damp * 10);
    damp *= 10;
  }
}

struct Sweep {
  const Eigen::MatrixXd& u;          // upper Cholesky factor of H⁻¹ (permuted order)
  const std::vector<int64_t>& perm;  // sweep position → original column
  WeightGrid& grid;
  int64_t block;
  bool fit_at_group_start;

  // Sweeps rows [r0, r0 + w.rows()) of the permuted weight w in place; q receives the grid values.
  void run(int64_t r0, RowMatrixD& w, RowMatrixD& q) const {
    const int64_t rows = w.rows(), cols = w.cols();
    const int64_t gc = grid.group_columns();
    std::vector<double> group_values(static_cast<size_t>(gc));
    for (int64_t i1 = 0; i1 < cols; i1 += block) {
      const int64_t i2 = std::min(cols, i1 + block), count = i2 - i1;
      RowMatrixD err(rows, count);
      for (int64_t j = i1; j < i2; ++j) {
        const int64_t orig = perm[static_cast<size_t>(j)];
        if (fit_at_group_start && orig % gc == 0) {  // no act-order here: orig == j
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < gc; ++c) group_values[static_cast<size_t>(c)] = w(r, j + c);
            grid.fit_group(r0 + r, orig / gc, group_values);
          }
        }
        const double d = u(j, j);
        for (int64_t r = 0; r < rows; ++r) {
          const double value = w(r, j);
          const double chosen = grid.quantize(r0 + r, orig, value);
          q(r, j) = chosen;
          err(r, j - i1) = (value - chosen) / d;
        }
        if (j + 1 < i2)
          w.block(0, j + 1, rows, i2 - j - 1).noalias() -= err.col(j - i1) * u.block(j, j + 1, 1, i2 - j - 1);
      }
      if (i2 < cols) w.rightCols(cols - i2).noalias() -= err * u.block(i1, i2, count, cols - i2);
    }
  }
};

}  // namespace

std::vector<float> gptq_quantize(std::span<const float> weight, const Eigen::MatrixXd& hessian, WeightGrid& grid,
                                 const GptqOptions& options, GptqStats* stats_out, const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t rows = grid.rows(), cols = grid.cols();
  if (static_cast<int64_t>(weight.size()) != rows * cols || hessian.rows() != cols || hessian.cols() != cols)
    throw_error(ErrorKind::Internal, "GPTQ: {}: weight {}x{} and Hessian {}x{} disagree", what, rows, cols,
                hessian.rows(), hessian.cols());
  if (options.block_size < 1 || options.damp_percent <= 0)
    throw_error(ErrorKind::Usage, "GPTQ: block size {} and damp {} must be positive", options.block_size,
                options.damp_percent);
  GptqStats stats;

  Eigen::MatrixXd h = hessian;
  RowMatrixD w = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                     weight.data(), rows, cols)
                     .cast<double>();
  for (int64_t c = 0; c < cols; ++c)
    if (h(c, c) == 0) {
      h(c, c) = 1;
      w.col(c).setZero();
      ++stats.dead_columns;
    }

  const int64_t gc = grid.group_columns();
  const bool static_groups = options.static_groups || options.act_order;
  if (!grid.fixed() && static_groups) {
    parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
      std::vector<double> values(static_cast<size_t>(gc));
      for (size_t r = begin; r < end; ++r)
        for (int64_t g = 0; g * gc < cols; ++g) {
          for (int64_t c = 0; c < gc; ++c) values[static_cast<size_t>(c)] = w(static_cast<int64_t>(r), g * gc + c);
          grid.fit_group(static_cast<int64_t>(r), g, values);
        }
    });
  }

  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (options.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return h(a, a) > h(b, b); });
  Eigen::MatrixXd hp(cols, cols);
  RowMatrixD wp(rows, cols);
  for (int64_t i = 0; i < cols; ++i) {
    wp.col(i) = w.col(perm[static_cast<size_t>(i)]);
    for (int64_t j = 0; j < cols; ++j) hp(i, j) = h(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  const Eigen::MatrixXd u = inverse_cholesky_upper(hp, options, stats, what);

  // Fitting at a group's first column needs the whole group inside the current block (or the block inside the
  // group), so that every value the fit reads is up to date.
  const bool fit_at_group_start = !grid.fixed() && !static_groups;
  int64_t block = options.block_size;
  if (fit_at_group_start && gc < cols && block % gc != 0 && gc % block != 0) block = gc;

  RowMatrixD q(rows, cols);
  const Sweep sweep{u, perm, grid, block, fit_at_group_start};
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  parallel_for(static_cast<size_t>(tiles), [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      const int64_t r0 = static_cast<int64_t>(t) * kRowTile, n = std::min(rows, r0 + kRowTile) - r0;
      RowMatrixD wt = wp.middleRows(r0, n), qt(n, cols);
      sweep.run(r0, wt, qt);
      q.middleRows(r0, n) = qt;
    }
  });

  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols; ++i)
      out[static_cast<size_t>(r * cols + perm[static_cast<size_t>(i)])] = static_cast<float>(q(r, i));

  const double n = static_cast<double>(cols), m = static_cast<double>(rows);
  stats.flops = (n * n * n) * (1.0 / 3 + 1 + 1.0 / 3) + m * n * n + m * n * static_cast<double>(block);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats_out) *stats_out = stats;
  return out;
}

std::vector<float> rtn_quantize(std::span<const float> weight, WeightGrid& grid) {
  const int64_t rows = grid.rows(), cols = grid.cols(), gc = grid.group_columns();
  if (static_cast<int64_t>(weight.size()) != rows * cols)
    throw_error(ErrorKind::Internal, "RTN: weight size disagrees with its grid");
  std::vector<float> out(weight.size());
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    std::vector<double> values(static_cast<size_t>(gc));
    for (size_t rr = begin; rr < end; ++rr) {
      const int64_t r = static_cast<int64_t>(rr);
      for (int64_t c0 = 0; c0 < cols; c0 += gc) {
        for (int64_t c = 0; c < gc; ++c) values[static_cast<size_t>(c)] = weight[static_cast<size_t>(r * cols + c0 + c)];
        if (!grid.fixed()) grid.fit_group(r, c0 / gc, values);
        for (int64_t c = 0; c < gc; ++c)
          out[static_cast<size_t>(r * cols + c0 + c)] = grid.quantize(r, c0 + c, values[static_cast<size_t>(c)]);
      }
    }
  });
  return out;
}

}  // namespace slmopt
