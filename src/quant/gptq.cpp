// GPTQ solver. See gptq.h for the algorithm; this file is the transcription plus the bookkeeping that keeps it
// fast and deterministic: the F32 factor of quant/inverse_cholesky.h, lazy batches whose trailing updates are
// exec/gemm.h products, a fixed row tiling and stable act-order sorting.
#include "slmopt/quant/gptq.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "slmopt/core/error.h"
#include "slmopt/core/huge_pages.h"
#include "slmopt/core/log.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/gemm.h"
#include "slmopt/quant/inverse_cholesky.h"

namespace slmopt {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kRowTile = 64;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One thread's buffers, kept across tiles and calls (a fresh tile of zeroed pages per call cost a quarter of the
// sweep's cycles in page faults and zeroing). resize() only grows: nothing here is read before it is written.
struct SweepScratch {
  std::vector<float> wt, qt, err, e, q;
  std::vector<double> group_values, joint_values;
  template <typename T>
  static T* at_least(std::vector<T>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
    return v.data();
  }
};
thread_local SweepScratch tls_scratch;

// The in-batch rank-1 update of column c by column j over the tile's rows: w[r] −= e[r]·u, a multiply and a
// subtraction per element (no fused multiply-add: -ffp-contract=off), exactly the row-major sweep's operations.
void rank1_update(float* w, const float* e, float u, int64_t n) {
  for (int64_t r = 0; r < n; ++r) w[r] -= e[r] * u;
}

struct Sweep {
  const GptqFactor& f;
  WeightGrid& grid;
  int64_t block;
  int64_t inner;  // columns per inner batch: rank-1 updates inside it, one product per inner batch for the rest
  bool fit_at_group_start;
  int64_t joint;  // grid.joint_columns(): groups of this many columns are rounded together at their first column

  // Sweeps `rows` rows starting at weight row r0 on the transposed tile wt [cols, rows] (permuted column order,
  // column j of every row contiguous at wt + j·rows), updated in place; the grid values go to qt, laid out as wt. Every element sees the same operations in the
  // same order as a row-major sweep: the per-column rounding, the rank-1 updates w − e·u, and the products
  // (exec/gemm.h with A = Uᵀ read through its strides: A(i,k)·B(k,j) = U(k,i)·(−E)(j,k), the same products).
  void run(int64_t r0, int64_t rows, float* wt, float* qt, SweepScratch& s) const {
    const int64_t cols = f.columns, gc = grid.group_columns();
    const float* u = f.u.data();
    float* errt = SweepScratch::at_least(s.err, block * rows);  // (−E)ᵀ of the lazy batch: [block, rows]
    float* e = SweepScratch::at_least(s.e, rows);
    float* q = SweepScratch::at_least(s.q, rows * std::max<int64_t>(joint, 1));
    double* group_values = SweepScratch::at_least(s.group_values, gc);
    double* joint_values = SweepScratch::at_least(s.joint_values, 2 * joint);
    double* joint_weights = joint_values + joint;
    for (int64_t i1 = 0; i1 < cols; i1 += block) {
      const int64_t i2 = std::min(cols, i1 + block), count = i2 - i1;
      for (int64_t s1 = i1; s1 < i2; s1 += inner) {
        const int64_t s2 = std::min(i2, s1 + inner);
        for (int64_t j = s1; j < s2; ++j) {
          const int64_t orig = f.perm[static_cast<size_t>(j)];
          float* wj = wt + j * rows;
          if (fit_at_group_start && orig % gc == 0) {  // no act-order here: orig == j
            const int64_t n = std::min(gc, cols - j);   // the last group may be shorter
            for (int64_t r = 0; r < rows; ++r) {
              for (int64_t c = 0; c < n; ++c) group_values[c] = wt[(j + c) * rows + r];
              grid.fit_group(r0 + r, orig / gc, std::span<const double>(group_values, static_cast<size_t>(n)));
            }
          }
          const float* chosen = q;
          int64_t chosen_stride = 1;
          if (joint > 1) {
            if (j % joint == 0) {
              // The group's columns hold every earlier column's update (the group lies inside this inner batch):
              // round them together, each weighted by its GPTQ cost 1/U_jj² (the error of column j costs
              // e²/U_jj²), then propagate the group's errors column by column as usual.
              for (int64_t c = 0; c < joint; ++c) {
                const double ujj = u[(j + c) * cols + j + c];
                joint_weights[c] = 1.0 / (ujj * ujj);
              }
              for (int64_t r = 0; r < rows; ++r) {
                for (int64_t c = 0; c < joint; ++c) joint_values[c] = wt[(j + c) * rows + r];
                grid.quantize_joint(r0 + r, orig, joint_values, joint_weights, q + r * joint);
              }
            }
            chosen = q + j % joint;
            chosen_stride = joint;
          } else {
            grid.quantize_column(r0, rows, orig, wj, q);
          }
          const float d = u[j * cols + j];
          float* ej = errt + (j - i1) * rows;
          float* o = qt + j * rows;
          for (int64_t r = 0; r < rows; ++r) {
            const float value = wj[r], c = chosen[r * chosen_stride];
            o[r] = c;
            const float err = (value - c) / d;
            e[r] = err;
            ej[r] = -err;
          }
          const float* urow = u + j * cols;
          for (int64_t c = j + 1; c < s2; ++c) rank1_update(wt + c * rows, e, urow[c], rows);
        }
        // The inner batch's errors reach the rest of the lazy batch: Wᵀ[s2:i2, :] += U[s1:s2, s2:i2]ᵀ·(−E)ᵀ.
        if (s2 < i2)
          gemm_accumulate({i2 - s2, rows, s2 - s1, u + s1 * cols + s2, 1, cols, errt + (s1 - i1) * rows, rows,
                           wt + s2 * rows, rows});
      }
      // Lazy batch: Wᵀ[i2:, :] += U[i1:i2, i2:]ᵀ·(−E)ᵀ as one product.
      if (i2 < cols)
        gemm_accumulate({cols - i2, rows, count, u + i1 * cols + i2, 1, cols, errt, rows, wt + i2 * rows, rows});
    }
  }
};

}  // namespace

GptqFactor gptq_factor(const Eigen::MatrixXd& hessian, const GptqOptions& options, const std::string& what) {
  const auto start = Clock::now();
  const int64_t cols = hessian.cols();
  if (hessian.rows() != cols) throw_error(ErrorKind::Internal, "GPTQ: {}: Hessian {}x{} is not square", what, hessian.rows(), cols);
  if (options.block_size < 1 || options.damp_percent <= 0)
    throw_error(ErrorKind::Usage, "GPTQ: block size {} and damp {} must be positive", options.block_size,
                options.damp_percent);
  GptqFactor f;
  f.columns = cols;
  f.dead.assign(static_cast<size_t>(cols), 0);
  double diag_sum = 0;
  for (int64_t c = 0; c < cols; ++c) {
    f.dead[static_cast<size_t>(c)] = hessian(c, c) == 0;
    diag_sum += f.dead[static_cast<size_t>(c)] ? 1.0 : hessian(c, c);  // a dead column's H_ii counts as 1
  }
  const auto diag = [&](int64_t c) { return f.dead[static_cast<size_t>(c)] ? 1.0 : hessian(c, c); };
  f.perm.resize(static_cast<size_t>(cols));
  std::iota(f.perm.begin(), f.perm.end(), 0);
  const int64_t og = options.order_group;
  if (og < 1 || cols % og != 0)
    throw_error(ErrorKind::Internal, "GPTQ: {}: act-order group {} does not divide {} columns", what, og, cols);
  if (options.act_order) {
    // Groups of order_group consecutive columns, by descending Σ diag H over the group, columns in order inside.
    std::vector<int64_t> groups(static_cast<size_t>(cols / og));
    std::vector<double> weight(groups.size(), 0.0);
    std::iota(groups.begin(), groups.end(), 0);
    for (int64_t c = 0; c < cols; ++c) weight[static_cast<size_t>(c / og)] += diag(c);
    std::stable_sort(groups.begin(), groups.end(),
                     [&](int64_t a, int64_t b) { return weight[static_cast<size_t>(a)] > weight[static_cast<size_t>(b)]; });
    for (size_t g = 0; g < groups.size(); ++g)
      for (int64_t c = 0; c < og; ++c) f.perm[g * static_cast<size_t>(og) + static_cast<size_t>(c)] = groups[g] * og + c;
  }

  const double mean_diag = diag_sum / static_cast<double>(cols);
  double damp = options.damp_percent;
  for (int attempt = 0;; ++attempt) {
    HugeVector<float> hp(static_cast<size_t>(cols * cols));
    // In 512 × 16 tiles through a local buffer: the column-major Hessian is read down its columns (4 KiB runs the
    // prefetchers follow) and hp written along its rows (a row of H at a time strides by n doubles, a column of hp
    // by n floats: cache-set conflicts and a cache miss per element).
    constexpr int64_t kTall = 512, kWide = 16;
    parallel_for(static_cast<size_t>((cols + kTall - 1) / kTall), [&](size_t begin, size_t end) {
      std::vector<float> tile(static_cast<size_t>(kTall * kWide));
      for (int64_t i0 = static_cast<int64_t>(begin) * kTall; i0 < std::min(cols, static_cast<int64_t>(end) * kTall); i0 += kTall) {
        const int64_t i1 = std::min(cols, i0 + kTall);
        for (int64_t j0 = 0; j0 < cols; j0 += kWide) {
          const int64_t j1 = std::min(cols, j0 + kWide);
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t pj = f.perm[static_cast<size_t>(j)];
            const double* column = hessian.data() + pj * cols;
            for (int64_t i = i0; i < i1; ++i) {
              const int64_t pi = f.perm[static_cast<size_t>(i)];
              const double v = pi == pj ? diag(pi) + damp * mean_diag : column[pi];
              tile[static_cast<size_t>((i - i0) * kWide + (j - j0))] = static_cast<float>(v);
            }
          }
          for (int64_t i = i0; i < i1; ++i)
            std::copy_n(tile.data() + (i - i0) * kWide, j1 - j0, hp.data() + i * cols + j0);
        }
      }
    });
    if (inverse_cholesky_upper_f32(std::move(hp), cols, f.u)) {
      f.damp_percent_used = damp;
      f.damp_raises = attempt;
      break;
    }
    if (attempt >= options.max_damp_raises)
      throw_error(ErrorKind::Internal, "GPTQ: {}: Hessian not positive definite even with damp {}", what, damp);
    spdlog::warn("GPTQ: {}: Cholesky failed with damp {:g}; retrying with {:g}", what, damp, damp * 10);
    damp *= 10;
  }
  f.flops = inverse_cholesky_flops(cols) * (f.damp_raises + 1);
  f.seconds = since(start);
  return f;
}

std::vector<float> gptq_quantize(std::span<const float> weight, const GptqFactor& f, WeightGrid& grid,
                                 const GptqOptions& options, GptqStats* stats_out, const std::string& what) {
  const auto start = Clock::now();
  const int64_t rows = grid.rows(), cols = grid.cols();
  if (static_cast<int64_t>(weight.size()) != rows * cols || f.columns != cols)
    throw_error(ErrorKind::Internal, "GPTQ: {}: weight {}x{} and Hessian {}x{} disagree", what, rows, cols, f.columns,
                f.columns);
  if (options.block_size < 1) throw_error(ErrorKind::Usage, "GPTQ: block size {} must be positive", options.block_size);
  GptqStats stats;
  stats.damp_percent_used = f.damp_percent_used;
  stats.damp_raises = f.damp_raises;
  stats.dead_columns = std::count(f.dead.begin(), f.dead.end(), 1);

  const int64_t gc = grid.group_columns(), joint = grid.joint_columns();
  if (joint > 1) {
    // Joint groups must stay whole and in order in the sweep (act-order over groups: GptqOptions::order_group).
    for (int64_t i = 0; i < cols; ++i)
      if (i % joint == 0 ? f.perm[static_cast<size_t>(i)] % joint != 0
                         : f.perm[static_cast<size_t>(i)] != f.perm[static_cast<size_t>(i - 1)] + 1)
        throw_error(ErrorKind::Internal, "GPTQ: {}: the column order splits groups of {} columns", what, joint);
  }
  const bool static_groups = options.static_groups || options.act_order;
  if (!grid.fixed() && static_groups) {
    parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
      std::vector<double> values(static_cast<size_t>(gc));
      for (size_t r = begin; r < end; ++r)
        for (int64_t g = 0; g * gc < cols; ++g) {
          const int64_t n = std::min(gc, cols - g * gc);
          for (int64_t c = 0; c < n; ++c) {
            const int64_t col = g * gc + c;
            values[static_cast<size_t>(c)] = f.dead[static_cast<size_t>(col)] ? 0.0 : weight[r * static_cast<size_t>(cols) + static_cast<size_t>(col)];
          }
          grid.fit_group(static_cast<int64_t>(r), g, std::span<const double>(values.data(), static_cast<size_t>(n)));
        }
    });
  }

  // Fitting at a group's first column needs the whole group inside the current block (or the block inside the
  // group), so that every value the fit reads is up to date.
  const bool fit_at_group_start = !grid.fixed() && !static_groups;
  int64_t block = options.block_size;
  if (fit_at_group_start && gc < cols && block % gc != 0 && gc % block != 0) block = gc;
  if (joint > 1 && block % joint != 0) block = std::max<int64_t>(1, block / joint) * joint;

  // Inner batches of 16 columns: a group fitted at its first column must start an inner batch, so that the
  // values it reads have every earlier column's update.
  // A joint group must lie inside one inner batch as well.
  const int64_t inner = (fit_at_group_start && gc % 16 != 0) || 16 % joint != 0 ? block : 16;
  // The result on transparent huge pages where the kernel allows: touching 46 MB page by page (an FFN linear of
  // the 1B shape) costs more page faults than the sweep's arithmetic on these virtual machines.
  std::vector<float> out;
  out.reserve(static_cast<size_t>(rows * cols));
  advise_huge_pages(out.data(), static_cast<size_t>(rows * cols) * sizeof(float));
  out.resize(static_cast<size_t>(rows * cols));
  const Sweep sweep{f, grid, block, inner, fit_at_group_start, joint};
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  parallel_for(static_cast<size_t>(tiles), [&](size_t begin, size_t end) {
    SweepScratch& s = tls_scratch;
    for (size_t t = begin; t < end; ++t) {
      const int64_t r0 = static_cast<int64_t>(t) * kRowTile, n = std::min(rows, r0 + kRowTile) - r0;
      float* wt = SweepScratch::at_least(s.wt, n * cols);
      float* qt = SweepScratch::at_least(s.qt, n * cols);
      // Transposes in strips of 16 columns: the tile's rows lie a power of two apart in memory, so walking one
      // column down all of them would thrash a few L1 sets; a strip reads each row's line once.
      constexpr int64_t kStrip = 16;
      for (int64_t i0 = 0; i0 < cols; i0 += kStrip) {
        const int64_t i1 = std::min(cols, i0 + kStrip);
        for (int64_t r = 0; r < n; ++r) {
          const float* src = weight.data() + (r0 + r) * cols;
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t orig = f.perm[static_cast<size_t>(i)];
            wt[i * n + r] = f.dead[static_cast<size_t>(orig)] ? 0.0f : src[orig];
          }
        }
      }
      sweep.run(r0, n, wt, qt, s);
      for (int64_t i0 = 0; i0 < cols; i0 += kStrip) {
        const int64_t i1 = std::min(cols, i0 + kStrip);
        for (int64_t r = 0; r < n; ++r) {
          float* dst = out.data() + (r0 + r) * cols;
          for (int64_t i = i0; i < i1; ++i) dst[f.perm[static_cast<size_t>(i)]] = qt[i * n + r];
        }
      }
    }
  });

  // The updates of every column by every earlier one: ≈ m·n² (products and rank-1 updates together).
  const double n = static_cast<double>(cols), m = static_cast<double>(rows);
  stats.flops = m * n * n;
  stats.seconds = since(start);
  if (stats_out) *stats_out = stats;
  return out;
}

std::vector<float> gptq_quantize(std::span<const float> weight, const Eigen::MatrixXd& hessian, WeightGrid& grid,
                                 const GptqOptions& options, GptqStats* stats_out, const std::string& what) {
  const int64_t rows = grid.rows(), cols = grid.cols();
  if (static_cast<int64_t>(weight.size()) != rows * cols || hessian.rows() != cols || hessian.cols() != cols)
    throw_error(ErrorKind::Internal, "GPTQ: {}: weight {}x{} and Hessian {}x{} disagree", what, rows, cols,
                hessian.rows(), hessian.cols());
  const GptqFactor factor = gptq_factor(hessian, options, what);
  GptqStats stats;
  std::vector<float> out = gptq_quantize(weight, factor, grid, options, &stats, what);
  stats.factor_seconds = factor.seconds;
  stats.seconds += factor.seconds;
  stats.flops += factor.flops;
  if (stats_out) *stats_out = stats;
  return out;
}

GptaqCorrection gptaq_correction(const GptqFactor& f, const Eigen::MatrixXd& cross, double alpha) {
  const int64_t n = f.columns;
  if (cross.rows() != n || cross.cols() != n)
    throw_error(ErrorKind::Internal, "GPTAQ: cross statistic {}x{} for {} columns", cross.rows(), cross.cols(), n);
  const size_t nn = static_cast<size_t>(n * n);
  // Dᵀ in the sweep's order, so that Aᵀ = U·Dᵀ is a plain row-major product (A = D·Uᵀ).
  HugeVector<float> dt(nn);
  parallel_for(static_cast<size_t>(n), [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const int64_t pk = f.perm[k];
      for (int64_t i = 0; i < n; ++i) {
        const int64_t pi = f.perm[static_cast<size_t>(i)];
        dt[k * static_cast<size_t>(n) + static_cast<size_t>(i)] =
            f.dead[static_cast<size_t>(pk)] ? 0.0f : static_cast<float>(cross(pi, pk));  // a dead column has no x̃
      }
    }
  });
  HugeVector<float> at(nn, 0.0f);
  gemm_accumulate_parallel({.m = n, .n = n, .k = n, .a = f.u.data(), .a_row = n, .a_col = 1, .b = dt.data(),
                            .ldb = n, .c = at.data(), .ldc = n});
  dt = HugeVector<float>();  // Dᵀ is spent: free it before P is allocated
  // triu₁(A) (column j corrects only later columns) is the strictly lower part of Aᵀ, scaled by α here once
  // rather than in P's sum. U is upper with zeros below (gptq_factor's inverse is zero-filled), as used above.
  parallel_for(static_cast<size_t>(n), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r)
      for (size_t c = 0; c < static_cast<size_t>(n); ++c) {
        float& v = at[r * static_cast<size_t>(n) + c];
        v = c >= r ? 0.0f : v * static_cast<float>(alpha);
      }
  });
  // P(i,j) = Σ_k A(i,k)·U(k,j), A read transposed from Aᵀ's storage; P is strictly upper, so tiles below the
  // diagonal are skipped (they are zero).
  GptaqCorrection out{n, HugeVector<float>(nn, 0.0f)};
  gemm_accumulate_parallel({.m = n, .n = n, .k = n, .a = at.data(), .a_row = 1, .a_col = n, .b = f.u.data(),
                            .ldb = n, .c = out.p.data(), .ldc = n},
                           GemmTriangle::UpperOnly);
  return out;
}

std::vector<float> gptaq_target(std::span<const float> weight, int64_t rows, const GptqFactor& f,
                                const GptaqCorrection& p) {
  const int64_t n = f.columns;
  if (static_cast<int64_t>(weight.size()) != rows * n || p.columns != n)
    throw_error(ErrorKind::Internal, "GPTAQ: weight {} values for {} rows of {} columns", weight.size(), rows, n);
  const size_t cols = static_cast<size_t>(n);
  HugeVector<float> wp(static_cast<size_t>(rows) * cols), c(static_cast<size_t>(rows) * cols, 0.0f);
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r)
      for (size_t i = 0; i < cols; ++i) {
        const int64_t orig = f.perm[i];
        wp[r * cols + i] = f.dead[static_cast<size_t>(orig)] ? 0.0f : weight[r * cols + static_cast<size_t>(orig)];
      }
  });
  gemm_accumulate_parallel({.m = rows, .n = n, .k = n, .a = wp.data(), .a_row = n, .a_col = 1, .b = p.p.data(),
                            .ldb = n, .c = c.data(), .ldc = n});
  std::vector<float> out(weight.begin(), weight.end());
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r)
      for (size_t i = 0; i < cols; ++i) out[r * cols + static_cast<size_t>(f.perm[i])] += c[r * cols + i];
  });
  return out;
}

std::vector<float> rtn_quantize(std::span<const float> weight, WeightGrid& grid) {
  const int64_t rows = grid.rows(), cols = grid.cols(), gc = grid.group_columns(), joint = grid.joint_columns();
  if (static_cast<int64_t>(weight.size()) != rows * cols)
    throw_error(ErrorKind::Internal, "RTN: weight size disagrees with its grid");
  std::vector<float> out(weight.size());
  if (joint > 1) {  // the grid's own rounding (the encoder's points)
    parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
      std::vector<double> values(static_cast<size_t>(joint));
      for (size_t r = begin; r < end; ++r)
        for (int64_t c0 = 0; c0 < cols; c0 += joint) {
          for (int64_t c = 0; c < joint; ++c) values[static_cast<size_t>(c)] = weight[r * static_cast<size_t>(cols) + static_cast<size_t>(c0 + c)];
          grid.quantize_joint(static_cast<int64_t>(r), c0, values.data(), nullptr, out.data() + r * static_cast<size_t>(cols) + static_cast<size_t>(c0));
        }
    });
    return out;
  }
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    std::vector<double> values(static_cast<size_t>(gc));
    for (size_t rr = begin; rr < end; ++rr) {
      const int64_t r = static_cast<int64_t>(rr);
      for (int64_t c0 = 0; c0 < cols; c0 += gc) {
        const int64_t n = std::min(gc, cols - c0);  // an integer grid's last group may be shorter
        for (int64_t c = 0; c < n; ++c) values[static_cast<size_t>(c)] = weight[static_cast<size_t>(r * cols + c0 + c)];
        if (!grid.fixed()) grid.fit_group(r, c0 / gc, std::span<const double>(values.data(), static_cast<size_t>(n)));
        for (int64_t c = 0; c < n; ++c)
          out[static_cast<size_t>(r * cols + c0 + c)] = grid.quantize(r, c0 + c, values[static_cast<size_t>(c)]);
      }
    }
  });
  return out;
}

}  // namespace slmopt
