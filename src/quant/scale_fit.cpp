// Scale searches for slmopt's encoders; the method is described in scale_fit.h.
#include "scale_fit.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant_math.h"
#include "slmopt/core/half.h"

namespace slmopt::quant_detail {
namespace {

struct Crossing {
  float t;          // inverse scale at which the element moves to `level`
  int16_t element;
  int16_t level;
};

}  // namespace

int LevelGrid::nearest(float v) const {
  if (!table_) return clamp_int(nearest_int(std::clamp(v, -4e6f, 4e6f)), lo_, hi_) - lo_;
  int lo = 0, hi = size() - 1;  // binary search over the midpoints
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
  thread_local std::vector<Crossing> crossings;
  thread_local std::vector<int> level;
  level.resize(static_cast<size_t>(n));
  double best_gain = -1;
  float best_scale = 0;
  for (const float sign : {1.0f, -1.0f}) {
    const float t_lo = window_lo / amax, t_hi = window_hi / amax;
    double sxv = 0, svv = 0;
    crossings.clear();
    for (int i = 0; i < n; ++i) {
      const float y = sign * x[i];
      const int k = grid.nearest(t_lo * y);
      level[static_cast<size_t>(i)] = k;
      const double v = grid.value(k);
      sxv += static_cast<double>(w[i]) * y * v;
      svv += static_cast<double>(w[i]) * v * v;
      const int k_end = grid.nearest(t_hi * y);
      if (y > 0)
        for (int kk = k; kk < k_end; ++kk)
          crossings.push_back({grid.midpoint(kk) / y, static_cast<int16_t>(i), static_cast<int16_t>(kk + 1)});
      else if (y < 0)
        for (int kk = k - 1; kk >= k_end; --kk)
          crossings.push_back({grid.midpoint(kk) / y, static_cast<int16_t>(i), static_cast<int16_t>(kk)});
    }
    auto consider = [&] {
      if (sxv > 0 && svv > 0 && sxv * sxv / svv > best_gain) {
        best_gain = sxv * sxv / svv;
        best_scale = static_cast<float>(sign * sxv / svv);
      }
    };
    consider();
    std::sort(crossings.begin(), crossings.end(), [](const Crossing& a, const Crossing& b) { return a.t < b.t; });
    for (const auto& c : crossings) {
      const auto i = static_cast<size_t>(c.element);
      const double y = sign * x[i];
      const double v_old = grid.value(level[i]), v_new = grid.value(c.level);
      sxv += w[i] * y * (v_new - v_old);
      svv += w[i] * (v_new * v_new - v_old * v_old);
      level[i] = c.level;
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
    // 1/scale rounds: check the neighbours, which costs little and makes the assignment exact for this scale.
    float best = std::fabs(x[i] - scale * grid.value(k));
    for (const int kk : {k - 1, k + 1}) {
      if (kk < 0 || kk >= grid.size()) continue;
      const float e = std::fabs(x[i] - scale * grid.value(kk));
      if (e < best) {
        best = e;
        k = kk;
      }
    }
    levels[i] = static_cast<uint8_t>(k);
    const double diff = static_cast<double>(x[i]) - static_cast<double>(scale * grid.value(k));
    err += w[i] * diff * diff;
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
  double a = 0, b = 0, c = 0, x1 = 0, x0 = 0;
  for (int i = 0; i < n; ++i) {
    const double q = levels[i], wi = w[i];
    a += wi * q * q;
    b += wi * q;
    c += wi;
    x1 += wi * x[i] * q;
    x0 += wi * x[i];
  }
  const double det = a * c - b * b;
  double s, o;
  if (det > 1e-12 * a * c) {
    s = (c * x1 - b * x0) / det;
    o = (a * x0 - b * x1) / det;
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
  scale = static_cast<float>(s);
  offset = static_cast<float>(o);
  return true;
}

AffineFit fit_affine(const float* x, const float* w, int n, int nmax, bool nonpositive_offset, int steps,
                     float r_lo, float r_hi) {
  float min = x[0], max = x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
  }
  if (nonpositive_offset && min > 0) min = 0;
  AffineFit best;
  if (!(max > min)) {  // a constant group: the offset alone (or nothing, if it must not be positive)
    best.scale = 0;
    best.offset = nonpositive_offset ? std::min(min, 0.0f) : min;
    uint8_t levels[256];
    best.error = affine_assign(x, w, n, nmax, 0, best.offset, levels);
    return best;
  }
  uint8_t levels[256];
  best.scale = (max - min) / static_cast<float>(nmax);
  best.offset = min;
  best.error = affine_assign(x, w, n, nmax, best.scale, best.offset, levels);
  for (int is = 0; is <= steps; ++is) {
    const float iscale = (static_cast<float>(nmax) + r_lo + (r_hi - r_lo) * static_cast<float>(is) / steps) / (max - min);
    for (int i = 0; i < n; ++i)
      levels[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
    float s, o;
    if (!affine_ls(x, w, n, levels, nonpositive_offset, s, o)) continue;
    double err = affine_assign(x, w, n, nmax, s, o, levels);
    for (int iter = 0; iter < 2; ++iter) {  // alternate: refit on the re-rounded levels
      float s2, o2;
      if (!affine_ls(x, w, n, levels, nonpositive_offset, s2, o2)) break;
      uint8_t levels2[256];
      const double err2 = affine_assign(x, w, n, nmax, s2, o2, levels2);
      if (!(err2 < err)) break;
      s = s2;
      o = o2;
      err = err2;
      std::copy(levels2, levels2 + n, levels);
    }
    if (err < best.error) {
      best.scale = s;
      best.offset = o;
      best.error = err;
    }
  }
  return best;
}

}  // namespace slmopt::quant_detail
