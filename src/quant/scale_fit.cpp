// Scale searches for slmopt's encoders; the method is described in scale_fit.h.
#include "scale_fit.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "quant_math.h"
#include "slmopt/core/half.h"

namespace slmopt::quant_detail {
namespace {

// One element moving to its next level: where (inverse scale t) and what it changes in the sweep's sums.
struct Crossing {
  float t;
  float d_xv;  // change of Σ w·x·v
  float d_vv;  // change of Σ w·v²
};

// Weighted sums of a group that do not depend on the levels.
struct GroupSums {
  double w = 0, wx = 0, wxx = 0;
};

// Least squares for levels summarised by A = Σw·q², B = Σw·q, X1 = Σw·x·q, and its error computed from the sums
// (no second pass over the group): E = Σw·x² − 2(s·X1 + o·Σw·x) + s²·A + 2·s·o·B + o²·Σw.
bool solve_affine(const GroupSums& g, double a, double b, double x1, bool nonpositive_offset, double& s, double& o,
                  double& err) {
  const double det = a * g.w - b * b;
  if (det > 1e-12 * a * g.w) {
    s = (g.w * x1 - b * g.wx) / det;
    o = (a * g.wx - b * x1) / det;
  } else if (a > 0) {
    s = x1 / a;  // all levels equal: a scale alone carries the group
    o = 0;
  } else {
    return false;
  }
  if (nonpositive_offset && o > 0) {
    if (a <= 0) return false;
    o = 0;
    s = x1 / a;
  }
  if (!(s >= 0) || !std::isfinite(s) || !std::isfinite(o)) return false;
  err = g.wxx - 2 * (s * x1 + o * g.wx) + s * s * a + 2 * s * o * b + o * o * g.w;
  return true;
}

}  // namespace

int LevelGrid::nearest_in_table(float v) const {
  int lo = 0, hi = size() - 1;  // binary search
  if (v <= value(0)) return 0;
  if (v >= value(hi)) return hi;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < value(mid))
      hi = mid;
    else
      lo = mid;
  }
  return v - value(lo) < value(hi) - v ? lo : hi;
}

float fit_symmetric_sweep(const float* x, const float* w, int n, const LevelGrid& grid, float window_lo,
                          float window_hi) {
  float amax = 0;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (amax < 1e-30f) return 0;
  // Crossings are ordered by a counting sort over fine buckets of the window (two buckets per
  // crossing): linear time, and the rare crossings that share a bucket are visited in an arbitrary order,
  // which only means the sweep also evaluates a few assignments no single scale rounds to, each of them
  // still scored exactly.
  thread_local std::vector<Crossing> crossings, sorted;
  thread_local std::vector<uint32_t> bucket_start;
  double best_num = 0, best_den = 1;  // best gain so far as the fraction sxv² / svv
  float best_scale = 0;
  const float t_lo = window_lo / amax, t_hi = window_hi / amax;
  for (const float sign : {1.0f, -1.0f}) {
    double sxv = 0, svv = 0;
    crossings.clear();
    for (int i = 0; i < n; ++i) {
      const float y = sign * x[i];
      if (w[i] == 0 || y == 0) continue;  // no influence on the error, nor on the scale
      const int k = grid.nearest(t_lo * y);
      const float v = grid.value(k);
      sxv += static_cast<double>(w[i]) * y * v;
      svv += static_cast<double>(w[i]) * v * v;
      const int k_end = grid.nearest(t_hi * y);
      const int step = y > 0 ? 1 : -1;
      const float inv_y = 1.0f / y;
      for (int kk = k; kk != k_end; kk += step) {
        const float v_old = grid.value(kk), v_new = grid.value(kk + step);
        crossings.push_back({grid.midpoint(std::min(kk, kk + step)) * inv_y, w[i] * y * (v_new - v_old),
                             w[i] * (v_new * v_new - v_old * v_old)});
      }
    }
    auto consider = [&] {
      if (sxv > 0 && svv > 0 && sxv * sxv * best_den > best_num * svv) {
        best_num = sxv * sxv;
        best_den = svv;
        best_scale = static_cast<float>(sign * sxv / svv);
      }
    };
    consider();
    const size_t m = crossings.size();
    if (m == 0) continue;
    const size_t buckets = 2 * m;
    const float to_bucket = static_cast<float>(buckets) / (t_hi - t_lo);
    bucket_start.assign(buckets + 1, 0);
    auto bucket_of = [&](const Crossing& c) {
      return std::min(buckets - 1, static_cast<size_t>(std::max(0.0f, (c.t - t_lo) * to_bucket)));
    };
    for (const auto& c : crossings) ++bucket_start[bucket_of(c) + 1];
    for (size_t b = 0; b < buckets; ++b) bucket_start[b + 1] += bucket_start[b];
    sorted.resize(m);
    for (const auto& c : crossings) sorted[bucket_start[bucket_of(c)]++] = c;
    for (const auto& c : sorted) {
      sxv += c.d_xv;
      svv += c.d_vv;
      consider();
    }
  }
  return best_scale;
}

double symmetric_assign(const float* x, const float* w, int n, const LevelGrid& grid, float scale, uint8_t* levels) {
  double err = 0;
  const float inv = scale != 0 ? 1.0f / scale : 0.0f;
  for (int i = 0; i < n; ++i) {
    int k = grid.nearest(x[i] * inv);
    if (!grid.is_uniform()) {
      // Table levels are uneven, so x·(1/scale) rounding can pick the wrong side of a midpoint: check the
      // neighbours (integer grids are off by at most a rounding tie, which costs nothing measurable).
      float best = std::fabs(x[i] - scale * grid.value(k));
      for (const int kk : {k - 1, k + 1}) {
        if (kk < 0 || kk >= grid.size()) continue;
        const float e = std::fabs(x[i] - scale * grid.value(kk));
        if (e < best) {
          best = e;
          k = kk;
        }
      }
    }
    levels[i] = static_cast<uint8_t>(k);
    const float diff = x[i] - scale * grid.value(k);
    err += static_cast<double>(w[i] * diff * diff);
  }
  return err;
}

float symmetric_ls_scale(const float* x, const float* w, int n, const LevelGrid& grid, const uint8_t* levels) {
  double sxv = 0, svv = 0;
  for (int i = 0; i < n; ++i) {
    const double v = grid.value(levels[i]);
    sxv += static_cast<double>(w[i]) * x[i] * v;
    svv += static_cast<double>(w[i]) * v * v;
  }
  return svv > 0 ? static_cast<float>(sxv / svv) : 0.0f;
}

bool refine_symmetric_f16(const float* x, const float* w, int n, const LevelGrid& grid, float scale,
                          uint16_t& best_f16, uint8_t* best_levels, double& best_error) {
  uint8_t levels[256];
  bool improved = false;
  auto try_f16 = [&](uint16_t h) {
    const float d = f16_to_f32(h);
    if (!std::isfinite(d)) return false;
    const double err = symmetric_assign(x, w, n, grid, d, levels);
    if (err < best_error) {
      best_error = err;
      best_f16 = h;
      std::copy(levels, levels + n, best_levels);
      improved = true;
      return true;
    }
    return false;
  };
  uint16_t h = f32_to_f16(scale);
  try_f16(h);
  // Least squares on the re-rounded levels, a few times while it helps.
  for (int iter = 0; iter < 3; ++iter) {
    symmetric_assign(x, w, n, grid, f16_to_f32(h), levels);
    const uint16_t next = f32_to_f16(symmetric_ls_scale(x, w, n, grid, levels));
    if (next == h || !try_f16(next)) break;
    h = next;
  }
  // Neighbouring f16 values: the rounding of the scale itself is part of the search.
  if (improved) {
    const uint16_t center = best_f16;
    for (const int step : {-2, -1, 1, 2}) {
      const int cand = static_cast<int>(center & 0x7fff) + step;
      if (cand <= 0 || cand >= 0x7c00) continue;
      try_f16(static_cast<uint16_t>((center & 0x8000) | cand));
    }
  }
  return improved;
}

double affine_assign(const float* x, const float* w, int n, int nmax, float scale, float offset, uint8_t* levels) {
  double err = 0;
  const float inv = scale > 0 ? 1.0f / scale : 0.0f;
  for (int i = 0; i < n; ++i) {
    int q = clamp_int(nearest_int(std::clamp((x[i] - offset) * inv, -1.0f, nmax + 1.0f)), 0, nmax);
    float best = std::fabs(x[i] - (scale * static_cast<float>(q) + offset));
    for (const int qq : {q - 1, q + 1}) {
      if (qq < 0 || qq > nmax) continue;
      const float e = std::fabs(x[i] - (scale * static_cast<float>(qq) + offset));
      if (e < best) {
        best = e;
        q = qq;
      }
    }
    levels[i] = static_cast<uint8_t>(q);
    const double diff = static_cast<double>(x[i]) - static_cast<double>(scale * static_cast<float>(q) + offset);
    err += w[i] * diff * diff;
  }
  return err;
}

bool affine_ls(const float* x, const float* w, int n, const uint8_t* levels, bool nonpositive_offset, float& scale,
               float& offset) {
  GroupSums g;
  double a = 0, b = 0, x1 = 0;
  for (int i = 0; i < n; ++i) {
    const double q = levels[i], wi = w[i];
    a += wi * q * q;
    b += wi * q;
    g.w += wi;
    x1 += wi * x[i] * q;
    g.wx += wi * x[i];
  }
  double s, o, err;  // err is not wanted here (g.wxx is left 0)
  if (!solve_affine(g, a, b, x1, nonpositive_offset, s, o, err)) return false;
  scale = static_cast<float>(s);
  offset = static_cast<float>(o);
  return true;
}

namespace {

// One pass: levels round((x − base)·iscale) clamped to 0..nmax, and the sums least squares needs.
void round_levels(const float* x, const float* w, int n, int nmax, float base, float iscale, uint8_t* levels,
                  double& a, double& b, double& x1) {
  float fa = 0, fb = 0, fx1 = 0;
  for (int i = 0; i < n; ++i) {
    const int q = clamp_int(nearest_int(std::clamp(iscale * (x[i] - base), -1.0f, nmax + 1.0f)), 0, nmax);
    levels[i] = static_cast<uint8_t>(q);
    const float qf = static_cast<float>(q), wq = w[i] * qf;
    fa += wq * qf;
    fb += wq;
    fx1 += wq * x[i];
  }
  a = fa;
  b = fb;
  x1 = fx1;
}

}  // namespace

AffineFit fit_affine(const float* x, const float* w, int n, int nmax, bool nonpositive_offset, int steps,
                     float r_lo, float r_hi, int refined_starts) {
  float min = x[0], max = x[0];
  GroupSums g;
  for (int i = 0; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    g.w += w[i];
    g.wx += static_cast<double>(w[i]) * x[i];
    g.wxx += static_cast<double>(w[i]) * x[i] * x[i];
  }
  if (nonpositive_offset && min > 0) min = 0;
  AffineFit best;
  uint8_t levels[256];
  if (!(max > min)) {  // a constant group: the offset alone (or nothing, if it must not be positive)
    best.scale = 0;
    best.offset = nonpositive_offset ? std::min(min, 0.0f) : min;
    best.error = affine_assign(x, w, n, nmax, 0, best.offset, levels);
    return best;
  }
  // The min/max fit is always a candidate.
  best.scale = (max - min) / static_cast<float>(nmax);
  best.offset = min;
  best.error = affine_assign(x, w, n, nmax, best.scale, best.offset, levels);
  // Keep the best few grid points, then alternate from each: re-round with its scale and offset and refit
  // while that helps (the grid's winner is not always the best start).
  constexpr int kMaxStarts = 64;
  const int kStarts = std::clamp(refined_starts, 1, kMaxStarts);
  AffineFit starts[kMaxStarts];
  for (auto& st : starts) st.error = -1;
  double a, b, x1, s, o, err;
  for (int is = 0; is <= steps; ++is) {
    const float iscale =
        (static_cast<float>(nmax) + r_lo + (r_hi - r_lo) * static_cast<float>(is) / static_cast<float>(steps)) /
        (max - min);
    round_levels(x, w, n, nmax, min, iscale, levels, a, b, x1);
    if (!solve_affine(g, a, b, x1, nonpositive_offset, s, o, err)) continue;
    int worst = 0;  // an empty slot, or the start with the largest error
    for (int k = 0; k < kStarts; ++k) {
      if (starts[k].error < 0) {
        worst = k;
        break;
      }
      if (starts[k].error > starts[worst].error) worst = k;
    }
    if (starts[worst].error < 0 || err < starts[worst].error)
      starts[worst] = {static_cast<float>(s), static_cast<float>(o), err};
  }
  for (AffineFit st : starts) {
    if (st.error < 0) continue;
    for (int iter = 0; iter < 3 && st.scale > 0; ++iter) {
      round_levels(x, w, n, nmax, st.offset, 1.0f / st.scale, levels, a, b, x1);
      if (!solve_affine(g, a, b, x1, nonpositive_offset, s, o, err) || !(err < st.error)) break;
      st = {static_cast<float>(s), static_cast<float>(o), err};
    }
    if (st.error < best.error) best = st;
  }
  return best;
}

}  // namespace slmopt::quant_detail
