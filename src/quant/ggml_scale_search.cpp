// ggml's scale searches, restated (see ggml_compatible.h). They are kept apart from slmopt's own searches
// because their only job is to reproduce llama.cpp's bytes: every float expression keeps ggml's evaluation
// order, integer levels are converted to float exactly where ggml converts them, and uint8 level arrays wrap
// exactly as ggml's do.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ggml_compatible.h"
#include "lane_vector.h"
#include "quant_math.h"
#include "simd_dispatch.h"

namespace slmopt::quant_detail {
namespace {

float ggml_make_qx_body(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  float w[256];
  for (int i = 0; i < n; ++i) w[i] = qw ? qw[i] : x[i] * x[i];
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float lf = static_cast<float>(l);
    sumlx += w[i] * x[i] * lf;
    suml2 += w[i] * lf * lf;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  // The 18 trial scales (is = -9..-1, 1..9), one per lane; the sums run in ggml's element order per lane, and
  // the winner is picked in ggml's trial order afterwards.
  constexpr int kTrials = 18, kVectors = (kTrials + kLanes - 1) / kLanes;
  float trial_is[kVectors * kLanes], trial_lx[kVectors * kLanes], trial_l2[kVectors * kLanes];
  for (int t = 0; t < kVectors * kLanes; ++t) {
    const int k = std::min(t, kTrials - 1);  // padding lanes repeat the last trial and are never read
    trial_is[t] = static_cast<float>(k < 9 ? k - 9 : k - 8);
  }
  for (int v = 0; v < kVectors; ++v) {
    F8 is;
    std::memcpy(&is, trial_is + v * kLanes, sizeof(F8));
    const F8 iscale_v = -(static_cast<float>(nmax) + 0.1f * is) / max;
    F8 lx{}, l2{};
    for (int i = 0; i < n; ++i) {
      const F8 lf = clamp8(round_even(iscale_v * x[i]), static_cast<float>(-nmax), static_cast<float>(nmax - 1));
      lx += w[i] * x[i] * lf;
      l2 += w[i] * lf * lf;
    }
    std::memcpy(trial_lx + v * kLanes, &lx, sizeof(F8));
    std::memcpy(trial_l2 + v * kLanes, &l2, sizeof(F8));
  }
  int winner = -1;
  for (int t = 0; t < kTrials; ++t) {
    if (trial_l2[t] > 0 && trial_lx[t] * trial_lx[t] > best * trial_l2[t]) {
      winner = t;
      scale = trial_lx[t] / trial_l2[t];
      best = scale * trial_lx[t];
    }
  }
  if (winner >= 0) {
    iscale = -(static_cast<float>(nmax) + 0.1f * trial_is[winner]) / max;
    for (int i = 0; i < n; ++i)
      L[i] = static_cast<int8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
  }
  return scale;
}

float ggml_make_q3_body(int n, int nmax, const float* x, int8_t* L) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    const float lf = static_cast<float>(l);
    sumlx += w * x[i] * lf;
    suml2 += w * lf * lf;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0) {
        float sl2 = suml2 - w * li * li;
        const int new_l = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          const float nl = static_cast<float>(new_l);
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// The common body of make_qkx2_quants and make_qkx3_quants; `qkx3` selects the latter's degenerate-range test.
float make_qkx(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
               float rmin, float rdelta, int nstep, bool use_mad, bool qkx3) {
  auto weight = [&](int i) { return weights ? weights[i] : x[i] * x[i]; };
  float min = x[0], max = x[0];
  float sum_w = weight(0);
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weight(i);
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (qkx3 ? max <= min : max == min) {
    std::fill(L, L + n, uint8_t{0});
    *the_min = -min;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weight(i) * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  // One trial scale per lane (see lane_vector.h): sums and errors in ggml's element order, then the trials
  // compared in ggml's order. ggml's loop reuses the best offset found so far (`min`) in later trials, so a
  // batch is valid only up to its first winner: the next batch starts right after it, with the new offset.
  float w[256];
  for (int i = 0; i < n; ++i) w[i] = weight(i);
  F8 lv[256];
  int is0 = 0;
  while (is0 <= nstep) {
    const F8 iscale_v = (rmin + rdelta * iota8(is0) + static_cast<float>(nmax)) / (max - min);
    F8 sum_l{}, sum_l2{}, sum_xl{};
    for (int i = 0; i < n; ++i) {
      const F8 lf = clamp8(round_even(iscale_v * (x[i] - min)), 0.f, static_cast<float>(nmax));
      lv[i] = lf;
      const F8 wl = w[i] * lf;
      sum_l += wl;
      sum_l2 += wl * lf;
      sum_xl += wl * x[i];
    }
    const F8 D = sum_w * sum_l2 - sum_l * sum_l;
    F8 this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    F8 this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const auto positive = this_min > 0.f;
    this_scale = positive ? sum_xl / sum_l2 : this_scale;
    this_min = positive ? F8{} : this_min;
    F8 cur_error{};
    for (int i = 0; i < n; ++i) {
      F8 diff = this_scale * lv[i] + this_min - x[i];
      diff = use_mad ? abs8(diff) : diff * diff;
      cur_error += w[i] * diff;
    }
    int next = is0 + kLanes;
    for (int k = 0; k < kLanes && is0 + k <= nstep; ++k) {
      if (!(D[k] > 0) || !(cur_error[k] < best_error)) continue;
      for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(lv[i][k]);
      best_error = cur_error[k];
      scale = this_scale[k];
      min = this_min[k];
      next = is0 + k + 1;
      break;
    }
    is0 = next;
  }
  (void)Laux;  // ggml's scratch levels: the lanes hold them here
  *the_min = -min;
  return scale;
}

float ggml_make_qkx2_body(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                          uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  return make_qkx(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad, false);
}

float ggml_make_qkx3_body(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                          uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  return make_qkx(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad, true);
}

float ggml_make_qp_body(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kGroupMaxEps) {
    std::fill(L, L + n, uint8_t{0});
    return 0.f;
  }
  // L is uint8_t as in ggml: a negative level wraps, and later arithmetic sees the wrapped value.
  float iscale = static_cast<float>(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += quant_weights[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += quant_weights[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    const float w = quant_weights[i];
    const float lf = static_cast<float>(l);
    sumlx += w * x[i] * lf;
    suml2 += w * lf * lf;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = quant_weights[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      float sl2 = suml2 - w * li * li;
      if (slx > 0 && sl2 > 0) {
        const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (new_l != L[i]) {
          const float nl = static_cast<float>(new_l);
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace

SLMOPT_QUANT_DISPATCH(float, ggml_make_qx, (int n, int nmax, const float* x, int8_t* L, const float* qw),
                      (n, nmax, x, L, qw))
SLMOPT_QUANT_DISPATCH(float, ggml_make_q3, (int n, int nmax, const float* x, int8_t* L),
                      (n, nmax, x, L))
SLMOPT_QUANT_DISPATCH(float, ggml_make_qkx2,
                      (int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad),
                      (n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad))
SLMOPT_QUANT_DISPATCH(float, ggml_make_qkx3,
                      (int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad),
                      (n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad))
SLMOPT_QUANT_DISPATCH(float, ggml_make_qp, (int n, int nmax, const float* x, uint8_t* L, const float* quant_weights),
                      (n, nmax, x, L, quant_weights))

}  // namespace slmopt::quant_detail
