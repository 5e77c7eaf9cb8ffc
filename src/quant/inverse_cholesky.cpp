// Blocked Cholesky and triangular inverse on exec/gemm.h; see inverse_cholesky.h for why U = P·L⁻¹·P.
// Diagonal blocks (128 × 128) are factored and inverted in double: they are 1/n of the work and their rounding
// would otherwise reach every later panel.
#include "slmopt/quant/inverse_cholesky.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "slmopt/core/parallel.h"
#include "slmopt/exec/gemm.h"

namespace slmopt {

namespace {

constexpr int64_t kBlock = 128;

// Lower Cholesky of the kb × kb block at a[k0, k0] (row stride n) in double, written back as floats. Left-looking
// on a column-major copy: column j's entries below the diagonal take their updates from every earlier column as
// one contiguous loop over rows (vectorised), each entry still receiving t − L(i,m)·L(j,m) for m = 0, 1, … in
// order, then the division by the pivot: the textbook loop's operations exactly.
bool factor_diagonal(HugeVector<float>& a, int64_t n, int64_t k0, int64_t kb, std::vector<double>& dc) {
  dc.resize(static_cast<size_t>(kb * kb));
  for (int64_t i = 0; i < kb; ++i)
    for (int64_t j = 0; j <= i; ++j) dc[static_cast<size_t>(j * kb + i)] = a[static_cast<size_t>((k0 + i) * n + k0 + j)];
  for (int64_t j = 0; j < kb; ++j) {
    double* cj = dc.data() + j * kb;
    double s = cj[j];
    for (int64_t m = 0; m < j; ++m) s -= dc[static_cast<size_t>(m * kb + j)] * dc[static_cast<size_t>(m * kb + j)];
    if (!(s > 0) || !std::isfinite(s)) return false;
    const double djj = std::sqrt(s);
    cj[j] = djj;
    for (int64_t m = 0; m < j; ++m) {
      const double* cm = dc.data() + m * kb;
      const double ljm = cm[j];
      for (int64_t i = j + 1; i < kb; ++i) cj[i] -= cm[i] * ljm;
    }
    for (int64_t i = j + 1; i < kb; ++i) cj[i] = cj[i] / djj;
  }
  for (int64_t i = 0; i < kb; ++i)
    for (int64_t j = 0; j <= i; ++j)
      a[static_cast<size_t>((k0 + i) * n + k0 + j)] = static_cast<float>(dc[static_cast<size_t>(j * kb + i)]);
  return true;
}

// Inverse of the kb × kb lower-triangular block at l[k0, k0] (row stride n), in double; returned row-major
// kb × kb (zeros above the diagonal). Row by row: row i's entries s_j = Σ_{m=j}^{i−1} L(i,m)·inv(m,j) grow as
// one contiguous loop over j per m (vectorised), each s_j still summing its terms from 0 in increasing m, then
// inv(i,j) = −s_j / L(i,i): the column-by-column textbook loop's operations exactly.
std::vector<double> invert_diagonal(const HugeVector<float>& l, int64_t n, int64_t k0, int64_t kb) {
  std::vector<double> inv(static_cast<size_t>(kb * kb), 0.0);
  std::vector<double> li(static_cast<size_t>(kb));
  for (int64_t i = 0; i < kb; ++i) {
    for (int64_t m = 0; m <= i; ++m) li[static_cast<size_t>(m)] = static_cast<double>(l[static_cast<size_t>((k0 + i) * n + k0 + m)]);
    double* row = inv.data() + i * kb;
    for (int64_t m = 0; m < i; ++m) {
      const double lim = li[static_cast<size_t>(m)];
      const double* im = inv.data() + m * kb;
      for (int64_t j = 0; j <= m; ++j) row[j] += lim * im[j];
    }
    const double lii = li[static_cast<size_t>(i)];
    for (int64_t j = 0; j < i; ++j) row[j] = -row[j] / lii;
    row[i] = 1.0 / lii;
  }
  return inv;
}

// Zeros over the pool (first touch of fresh pages included).
void zero_parallel(float* p, int64_t count) {
  constexpr int64_t kChunk = int64_t{1} << 16;
  parallel_for(static_cast<size_t>((count + kChunk - 1) / kChunk), [&](size_t begin, size_t end) {
    const int64_t from = static_cast<int64_t>(begin) * kChunk, to = std::min(count, static_cast<int64_t>(end) * kChunk);
    std::fill(p + from, p + to, 0.0f);
  });
}

}  // namespace

bool cholesky_lower_f32(HugeVector<float>& a, int64_t n, DiagonalInverses* inverses) {
  std::vector<float> bt;
  std::vector<double> dc;
  HugeVector<float> panel, neg_t;
  if (inverses) inverses->assign(static_cast<size_t>((n + kBlock - 1) / kBlock), {});
  for (int64_t k0 = 0; k0 < n; k0 += kBlock) {
    const int64_t kb = std::min(kBlock, n - k0), r0 = k0 + kb, rest = n - r0;
    if (!factor_diagonal(a, n, k0, kb, dc)) return false;
    if (rest == 0) break;
    // Panel: A[r0:, k0:r0] ← A[r0:, k0:r0]·L_kk⁻ᵀ, i.e. B(m, j) = L_kk⁻¹(j, m).
    std::vector<double> inv = invert_diagonal(a, n, k0, kb);
    bt.assign(static_cast<size_t>(kb * kb), 0.0f);
    for (int64_t j = 0; j < kb; ++j)
      for (int64_t m = 0; m <= j; ++m) bt[static_cast<size_t>(m * kb + j)] = static_cast<float>(inv[static_cast<size_t>(j * kb + m)]);
    // One pass over the pool for zeroing and product (each synchronisation of the pool costs a wake-up).
    panel.resize(static_cast<size_t>(rest * kb));
    constexpr int64_t kPanelRows = 64;
    parallel_for(static_cast<size_t>((rest + kPanelRows - 1) / kPanelRows), [&](size_t begin, size_t end) {
      const int64_t i0 = static_cast<int64_t>(begin) * kPanelRows, i1 = std::min(rest, static_cast<int64_t>(end) * kPanelRows);
      std::fill(panel.data() + i0 * kb, panel.data() + i1 * kb, 0.0f);
      gemm_accumulate({i1 - i0, kb, kb, a.data() + (r0 + i0) * n + k0, n, 1, bt.data(), kb, panel.data() + i0 * kb, kb});
    });
    if (inverses) (*inverses)[static_cast<size_t>(k0 / kBlock)] = std::move(inv);
    // Trailing update of the lower triangle: A[r0:, r0:] −= panel·panelᵀ (the panel copied back into A and
    // transposed and negated for the product, both over the pool).
    neg_t.resize(static_cast<size_t>(kb * rest));
    parallel_for(static_cast<size_t>((rest + 63) / 64), [&](size_t begin, size_t end) {
      for (int64_t j0 = static_cast<int64_t>(begin) * 64; j0 < std::min(rest, static_cast<int64_t>(end) * 64); j0 += 64) {
        const int64_t j1 = std::min(rest, j0 + 64);
        for (int64_t j = j0; j < j1; ++j) std::copy_n(panel.data() + j * kb, kb, a.data() + (r0 + j) * n + k0);
        for (int64_t m = 0; m < kb; ++m)
          for (int64_t j = j0; j < j1; ++j) neg_t[static_cast<size_t>(m * rest + j)] = -panel[static_cast<size_t>(j * kb + m)];
      }
    });
    gemm_accumulate_parallel({rest, rest, kb, panel.data(), kb, 1, neg_t.data(), rest, a.data() + r0 * n + r0, n},
                             GemmTriangle::LowerOnly);
  }
  return true;
}

HugeVector<float> invert_lower_f32(const HugeVector<float>& l, int64_t n, const DiagonalInverses* inverses) {
  HugeVector<float> m(static_cast<size_t>(n * n)), s;
  zero_parallel(m.data(), n * n);
  std::vector<float> neg_inv;
  constexpr int64_t kStrip = 256;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t ib = std::min(kBlock, n - i0);
    // The Cholesky's inverse of this block where it kept one (the same L values, so the same numbers).
    const size_t bi = static_cast<size_t>(i0 / kBlock);
    const std::vector<double> inv =
        inverses && bi < inverses->size() && !(*inverses)[bi].empty() ? (*inverses)[bi] : invert_diagonal(l, n, i0, ib);
    for (int64_t i = 0; i < ib; ++i)
      for (int64_t j = 0; j <= i; ++j) m[static_cast<size_t>((i0 + i) * n + i0 + j)] = static_cast<float>(inv[static_cast<size_t>(i * ib + j)]);
    if (i0 == 0) continue;
    // S = L[i0:i0+ib, 0:i0]·M[0:i0, 0:i0]; M is lower, so a strip of columns [j0, j1) only needs k ≥ j0.
    s.resize(static_cast<size_t>(ib * i0));
    const int64_t strips = (i0 + kStrip - 1) / kStrip;
    parallel_for(static_cast<size_t>(strips), [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        const int64_t j0 = static_cast<int64_t>(t) * kStrip, w = std::min(kStrip, i0 - j0);
        for (int64_t i = 0; i < ib; ++i) std::fill_n(s.data() + i * i0 + j0, w, 0.0f);  // each strip zeroes its own
        gemm_accumulate({ib, w, i0 - j0, l.data() + i0 * n + j0, n, 1, m.data() + j0 * n + j0, n, s.data() + j0, i0});
      }
    });
    // M[i0:i0+ib, 0:i0] = −M_ii·S.
    neg_inv.assign(static_cast<size_t>(ib * ib), 0.0f);
    for (int64_t i = 0; i < ib; ++i)
      for (int64_t j = 0; j <= i; ++j) neg_inv[static_cast<size_t>(i * ib + j)] = -static_cast<float>(inv[static_cast<size_t>(i * ib + j)]);
    gemm_accumulate_parallel({ib, i0, ib, neg_inv.data(), ib, 1, s.data(), i0, m.data() + i0 * n, n});
  }
  return m;
}

// P·X·P for the reversal P is a 180° rotation of the row-major storage: element k ↔ element n² − 1 − k. Split
// over the pool (each pair swapped by one thread): a single-threaded pass over 128 MiB costs tens of ms.
void rotate_half_turn(HugeVector<float>& x) {
  const size_t total = x.size(), half = total / 2;
  parallel_for(half, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) std::swap(x[k], x[total - 1 - k]);
  }, size_t{1} << 16);
}

bool inverse_cholesky_upper_f32(HugeVector<float>&& h, int64_t n, HugeVector<float>& u) {
  HugeVector<float> r = std::move(h);
  rotate_half_turn(r);
  DiagonalInverses inverses;
  if (!cholesky_lower_f32(r, n, &inverses)) return false;
  parallel_for(static_cast<size_t>(n), [&](size_t begin, size_t end) {
    // only the lower triangle is L; the rest may hold update leftovers
    for (size_t i = begin; i < end; ++i)
      std::fill(r.begin() + static_cast<int64_t>(i) * n + static_cast<int64_t>(i) + 1, r.begin() + (static_cast<int64_t>(i) + 1) * n, 0.0f);
  }, 16);
  u = invert_lower_f32(r, n, &inverses);
  rotate_half_turn(u);  // lower L⁻¹ → upper U
  std::atomic<bool> finite{true};
  parallel_for(u.size(), [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k)
      if (!std::isfinite(u[k])) {
        finite = false;
        return;
      }
  }, size_t{1} << 16);
  return finite;
}

double inverse_cholesky_flops(int64_t n) {
  const double d = static_cast<double>(n);
  return 2.0 * d * d * d / 3.0;
}

}  // namespace slmopt
