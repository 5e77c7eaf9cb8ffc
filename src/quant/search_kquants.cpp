// slmopt's search encoders for the K-quants (see search_encoders.h). A super-block is encoded in two stages,
// like ggml's, but each stage searches wider:
//   1. every sub-block gets its best continuous scale (and minimum): the exact sweep for the symmetric types
//      (Q3_K, Q6_K), the alternating affine fit for the types with a minimum (Q2_K, Q4_K, Q5_K);
//   2. the f16 super-scale(s) are tried at several values and, for each, every sub-block picks the better of
//      the two integer sub-scales around its ideal (four (scale, min) pairs for the types with a minimum),
//      judged by the exact error after re-rounding its elements; then the super-scale(s) are refitted by least
//      squares to the chosen integers and the choice is repeated.
// The decoders' float expressions (d·sc, then ·q, minus dmin·mn) are mirrored, so the errors compared here are
// the errors the decoded weights will have.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ggml_compatible.h"
#include "kquant_pack.h"
#include "lane_vector.h"
#include "quant_math.h"
#include "scale_fit.h"
#include "search_encoders.h"
#include "search_row_loop.h"
#include "simd_dispatch.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"

namespace slmopt::quant_detail {
namespace {

using namespace blocks;

// floor(v) clamped to [lo, hi], without converting out-of-range floats to int.
int floor_clamped(float v, int lo, int hi) {
  const float f = std::floor(v);
  if (!(f > static_cast<float>(lo))) return lo;
  if (f >= static_cast<float>(hi)) return hi;
  return static_cast<int>(f);
}

// ---- types with a minimum: x̂ = (d·sc)·q − dmin·mn ----

struct MinLayout {
  int n_sub;      // sub-blocks per super-block
  int sub_size;   // elements per sub-block
  int nmax;       // largest level
  int scale_max;  // largest integer sub-scale (and sub-minimum)
};

struct MinChoice {
  float d = 0, dmin = 0;  // as stored (f16-rounded)
  uint8_t sc[16] = {}, mn[16] = {};
  uint8_t L[kQKK] = {};
  double error = 0;
};

// Error of one sub-block for integer sub-scale and sub-minimum, with its levels (rounded, as ggml re-rounds).
double min_sub_error(const float* x, const float* w, int n, int nmax, float d, float dmin, int sc, int mn,
                     uint8_t* levels) {
  const float dl = d * static_cast<float>(sc);
  const float ml = dmin * static_cast<float>(mn);
  const float inv = dl != 0 ? 1.0f / dl : 0.0f;
  float err = 0;
  for (int i = 0; i < n; ++i) {
    const int q = clamp_int(nearest_int(std::clamp((x[i] + ml) * inv, -1.0f, nmax + 1.0f)), 0, nmax);
    levels[i] = static_cast<uint8_t>(q);
    const float diff = x[i] - (dl * static_cast<float>(q) - ml);
    err += w[i] * diff * diff;
  }
  return err;
}

// min_sub_error eight elements at a time (n a multiple of 8): the same levels and per-element errors, summed in
// another order. The fast encoder's polish uses it; its final choice is re-checked in double.
double min_sub_error_lanes(const float* x, const float* w, int n, int nmax, float d, float dmin, int sc, int mn,
                           uint8_t* levels) {
  const float dl = d * static_cast<float>(sc);
  const float ml = dmin * static_cast<float>(mn);
  const float inv = dl != 0 ? 1.0f / dl : 0.0f;
  F8 err{};
  for (int v = 0; v < n; v += kLanes) {
    F8 xv, wv;
    std::memcpy(&xv, x + v, sizeof(F8));
    std::memcpy(&wv, w + v, sizeof(F8));
    const F8 q = clamp8(round_even(clamp8((xv + ml) * inv, -1.0f, nmax + 1.0f)), 0.f, static_cast<float>(nmax));
    const F8 diff = xv - (dl * q - ml);
    err += wv * diff * diff;
    const I8 qi = __builtin_convertvector(q, I8);
    for (int k = 0; k < kLanes; ++k) levels[v + k] = static_cast<uint8_t>(qi[k]);
  }
  float total = 0;
  for (int k = 0; k < kLanes; ++k) total += err[k];
  return total;
}

// For stored d and dmin, picks every sub-block's integer scale and minimum around its continuous fit.
MinChoice choose_min_subscales(const float* x, const float* w, const MinLayout& lay, const AffineFit* fits,
                               uint16_t d_h, uint16_t dmin_h, bool lanes = false) {
  MinChoice c;
  c.d = f16_to_f32(d_h);
  c.dmin = f16_to_f32(dmin_h);
  uint8_t levels[32];
  for (int j = 0; j < lay.n_sub; ++j) {
    const float* xs = x + j * lay.sub_size;
    const float* ws = w + j * lay.sub_size;
    const float s = fits[j].scale, m = -fits[j].offset;
    const int sc0 = c.d > 0 ? floor_clamped(s / c.d, 0, lay.scale_max) : 0;
    const int mn0 = c.dmin > 0 ? floor_clamped(m / c.dmin, 0, lay.scale_max) : 0;
    double best = -1;
    for (int sc = sc0; sc <= std::min(sc0 + 1, lay.scale_max); ++sc) {
      for (int mn = mn0; mn <= std::min(mn0 + 1, lay.scale_max); ++mn) {
        const double err = lanes ? min_sub_error_lanes(xs, ws, lay.sub_size, lay.nmax, c.d, c.dmin, sc, mn, levels)
                                 : min_sub_error(xs, ws, lay.sub_size, lay.nmax, c.d, c.dmin, sc, mn, levels);
        if (best < 0 || err < best) {
          best = err;
          c.sc[j] = static_cast<uint8_t>(sc);
          c.mn[j] = static_cast<uint8_t>(mn);
          std::copy(levels, levels + lay.sub_size, c.L + j * lay.sub_size);
        }
      }
    }
    c.error += best;
  }
  return c;
}

// Least-squares d and dmin for the integers of `c` (x̂ = d·(sc·q) − dmin·mn), both kept non-negative.
bool refit_min_superscales(const float* x, const float* w, const MinLayout& lay, const MinChoice& c, float& d,
                           float& dmin) {
  double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
  for (int j = 0; j < lay.n_sub; ++j)
    for (int i = j * lay.sub_size; i < (j + 1) * lay.sub_size; ++i) {
      const double a = static_cast<double>(c.sc[j]) * c.L[i], b = c.mn[j], wi = w[i];
      saa += wi * a * a;
      sab += wi * a * b;
      sbb += wi * b * b;
      sxa += wi * x[i] * a;
      sxb += wi * x[i] * b;
    }
  // minimise Σ w (x − d·a + u·b)²  →  [saa −sab; −sab sbb]·[d; u] = [sxa; −sxb]
  const double det = saa * sbb - sab * sab;
  double dd, uu;
  if (sbb > 0 && det > 1e-12 * saa * sbb) {
    dd = (sxa * sbb - sab * sxb) / det;
    uu = (sab * sxa - saa * sxb) / det;
  } else {
    dd = saa > 0 ? sxa / saa : 0;
    uu = 0;
  }
  if (uu < 0) {
    uu = 0;
    dd = saa > 0 ? sxa / saa : 0;
  }
  if (!(dd >= 0) || !std::isfinite(dd) || !std::isfinite(uu)) return false;
  d = static_cast<float>(dd);
  dmin = static_cast<float>(uu);
  return true;
}

MinChoice search_min_superblock(const float* x, const float* w, const MinLayout& lay, int fit_steps, float r_lo,
                                float r_hi, int refined_starts) {
  AffineFit fits[16];
  float max_s = 0, max_m = 0;
  for (int j = 0; j < lay.n_sub; ++j) {
    fits[j] = fit_affine(x + j * lay.sub_size, w + j * lay.sub_size, lay.sub_size, lay.nmax, true, fit_steps, r_lo,
                         r_hi, refined_starts);
    max_s = std::max(max_s, fits[j].scale);
    max_m = std::max(max_m, -fits[j].offset);
  }
  const float smax = static_cast<float>(lay.scale_max);
  MinChoice best = choose_min_subscales(x, w, lay, fits, f32_to_f16(max_s / smax), f32_to_f16(max_m / smax));
  auto consider = [&](float d, float dmin) {
    const MinChoice c = choose_min_subscales(x, w, lay, fits, f32_to_f16(d), f32_to_f16(dmin));
    if (c.error < best.error) best = c;
  };
  for (float delta = -3.0f; delta <= 0.51f; delta += 0.5f) consider(max_s / (smax + delta), best.dmin);
  for (float delta = -2.0f; delta <= 0.51f; delta += 0.5f) consider(best.d, max_m / (smax + delta));
  for (int iter = 0; iter < 2; ++iter) {
    float d, dmin;
    if (!refit_min_superscales(x, w, lay, best, d, dmin)) break;
    const double before = best.error;
    consider(d, dmin);
    if (!(best.error < before)) break;
  }
  return best;
}

// ---- symmetric types: x̂ = (d·sc)·q ----

struct SymLayout {
  int q_lo, q_hi;    // levels
  int sc_lo, sc_hi;  // integer sub-scales
  float window_lo, window_hi;
};

struct SymChoice {
  float d = 0;
  int sc[16] = {};
  int8_t q[kQKK] = {};
  double error = 0;
};

double sym_sub_error(const float* x, const float* w, const SymLayout& lay, float d, int sc, int8_t* q) {
  const float dl = d * static_cast<float>(sc);
  const float inv = dl != 0 ? 1.0f / dl : 0.0f;
  const float lo = static_cast<float>(lay.q_lo), hi = static_cast<float>(lay.q_hi);
  float err = 0;
  for (int i = 0; i < 16; ++i) {
    const int l = nearest_int(std::clamp(x[i] * inv, lo, hi));
    q[i] = static_cast<int8_t>(l);
    const float diff = x[i] - dl * static_cast<float>(l);
    err += w[i] * diff * diff;
  }
  return err;
}

// sym_sub_error eight elements at a time (see min_sub_error_lanes).
double sym_sub_error_lanes(const float* x, const float* w, const SymLayout& lay, float d, int sc, int8_t* q) {
  const float dl = d * static_cast<float>(sc);
  const float inv = dl != 0 ? 1.0f / dl : 0.0f;
  F8 err{};
  for (int v = 0; v < 16; v += kLanes) {
    F8 xv, wv;
    std::memcpy(&xv, x + v, sizeof(F8));
    std::memcpy(&wv, w + v, sizeof(F8));
    const F8 l = round_even(clamp8(xv * inv, static_cast<float>(lay.q_lo), static_cast<float>(lay.q_hi)));
    const F8 diff = xv - dl * l;
    err += wv * diff * diff;
    const I8 li = __builtin_convertvector(l, I8);
    for (int k = 0; k < kLanes; ++k) q[v + k] = static_cast<int8_t>(li[k]);
  }
  float total = 0;
  for (int k = 0; k < kLanes; ++k) total += err[k];
  return total;
}

SymChoice choose_sym_subscales(const float* x, const float* w, const SymLayout& lay, const float* s, uint16_t d_h,
                               bool lanes = false) {
  SymChoice c;
  c.d = f16_to_f32(d_h);
  int8_t q[16];
  for (int j = 0; j < 16; ++j) {
    const int sc0 = c.d != 0 ? floor_clamped(s[j] / c.d, lay.sc_lo, lay.sc_hi) : 0;
    double best = -1;
    for (int sc = sc0; sc <= std::min(sc0 + 1, lay.sc_hi); ++sc) {
      const double err = lanes ? sym_sub_error_lanes(x + 16 * j, w + 16 * j, lay, c.d, sc, q)
                               : sym_sub_error(x + 16 * j, w + 16 * j, lay, c.d, sc, q);
      if (best < 0 || err < best) {
        best = err;
        c.sc[j] = sc;
        std::copy(q, q + 16, c.q + 16 * j);
      }
    }
    c.error += best;
  }
  return c;
}

SymChoice search_sym_superblock(const float* x, const float* w, const SymLayout& lay) {
  const LevelGrid grid = LevelGrid::uniform(lay.q_lo, lay.q_hi);
  float s[16];
  float s_max = 0;
  for (int j = 0; j < 16; ++j) {
    s[j] = fit_symmetric_sweep(x + 16 * j, w + 16 * j, 16, grid, lay.window_lo, lay.window_hi);
    if (std::fabs(s[j]) > std::fabs(s_max)) s_max = s[j];
  }
  SymChoice best = choose_sym_subscales(x, w, lay, s, f32_to_f16(s_max / static_cast<float>(lay.sc_hi)));
  auto consider = [&](float d) {
    const SymChoice c = choose_sym_subscales(x, w, lay, s, f32_to_f16(d));
    if (c.error < best.error) best = c;
  };
  const float hi = static_cast<float>(lay.sc_hi), lo = static_cast<float>(lay.sc_lo);
  for (float delta = -3.0f; delta <= 0.51f; delta += 0.5f) {
    consider(s_max / (hi + delta));
    consider(s_max / (lo - delta));
  }
  for (int iter = 0; iter < 2; ++iter) {  // least-squares super-scale for the chosen integers
    double sxa = 0, saa = 0;
    for (int e = 0; e < kQKK; ++e) {
      const double a = static_cast<double>(best.sc[e / 16]) * best.q[e];
      sxa += w[e] * x[e] * a;
      saa += w[e] * a * a;
    }
    if (!(saa > 0)) break;
    const double before = best.error;
    consider(static_cast<float>(sxa / saa));
    if (!(best.error < before)) break;
  }
  return best;
}

// ---- per-type layouts and packing (the row loop is search_row_loop.h) ----
//
// Each type's chosen scales and levels are packed by one function, which the search encoder (build_*: a fresh
// choice) and the fast encoder (polish_*: the stored block improved) share.

constexpr MinLayout kQ2KLayout{16, 16, 3, 15};
constexpr MinLayout kQ4KLayout{8, 32, 15, 63};
constexpr MinLayout kQ5KLayout{8, 32, 31, 63};
constexpr SymLayout kQ3KLayout{-4, 3, -32, 31, 2.0f, 5.5f};
constexpr SymLayout kQ6KLayout{-32, 31, -128, 127, 20.0f, 33.0f};

void pack_q2_k(const MinChoice& c, Q2_K& b) {
  b.d = f32_to_f16(c.d);
  b.dmin = f32_to_f16(c.dmin);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(c.sc[j] | (c.mn[j] << 4));
  pack_two_bit_levels(c.L, b.qs);
}

// Q4_K and Q5_K store their super-scales and 6-bit sub-scales and minima alike.
template <typename Block>
void pack_k4_scales(const MinChoice& c, Block& b) {
  b.d = f32_to_f16(c.d);
  b.dmin = f32_to_f16(c.dmin);
  std::memset(b.scales, 0, sizeof(b.scales));
  for (int j = 0; j < 8; ++j) pack_k4_scale_min(b.scales, j, c.sc[j], c.mn[j]);
}

void pack_q4_k(const MinChoice& c, Q4_K& b) {
  pack_k4_scales(c, b);
  pack_q4k_levels(c.L, b.qs);
}

void pack_q5_k(const MinChoice& c, Q5_K& b) {
  pack_k4_scales(c, b);
  pack_q5k_levels(c.L, b.qh, b.qs);
}

void pack_q3_k(const SymChoice& c, Q3_K& b) {
  b.d = f32_to_f16(c.d);
  std::memset(b.scales, 0, sizeof(b.scales));
  for (int j = 0; j < 16; ++j) pack_q3k_scale(b.scales, j, static_cast<uint8_t>(c.sc[j] + 32));
  uint8_t levels[kQKK];
  for (int e = 0; e < kQKK; ++e) levels[e] = static_cast<uint8_t>(c.q[e] + 4);
  pack_q3k_levels(levels, b.hmask, b.qs);
}

void pack_q6_k(const SymChoice& c, Q6_K& b) {
  b.d = f32_to_f16(c.d);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(c.sc[j]);
  uint8_t levels[kQKK];
  for (int e = 0; e < kQKK; ++e) levels[e] = static_cast<uint8_t>(c.q[e] + 32);
  pack_q6k_levels(levels, b.ql, b.qh);
}

void build_q2_k(const float* x, const float* w, Q2_K& b) {
  pack_q2_k(search_min_superblock(x, w, kQ2KLayout, 48, -1.5f, 1.0f, 16), b);
}
void build_q4_k(const float* x, const float* w, Q4_K& b) {
  pack_q4_k(search_min_superblock(x, w, kQ4KLayout, 36, -2.0f, 1.0f, 8), b);
}
void build_q5_k(const float* x, const float* w, Q5_K& b) {
  pack_q5_k(search_min_superblock(x, w, kQ5KLayout, 30, -2.0f, 1.0f, 8), b);
}
void build_q3_k(const float* x, const float* w, Q3_K& b) { pack_q3_k(search_sym_superblock(x, w, kQ3KLayout), b); }
void build_q6_k(const float* x, const float* w, Q6_K& b) { pack_q6_k(search_sym_superblock(x, w, kQ6KLayout), b); }

// ---- Encoder::Fast: llama.cpp's block, then a cheap polish ----
//
// The fast encoder starts from llama.cpp's own block (the exact replica) and improves it where a couple of
// least-squares steps can: refit the super-scale(s) to the block's integers, re-pick every sub-block's integer
// scale (and minimum) from the two (four) around its current value with the elements re-rounded, and keep the
// result only if its error is smaller. That costs a few passes over the block against llama.cpp's ~20-40 trial
// scales per sub-block, so the encoder stays as fast as llama.cpp's while never being worse.

// Sub-scales and minima of a stored K block with a minimum, as the continuous fits the chooser starts from.
void stored_min_fits(const MinLayout& lay, float d, float dmin, const uint8_t* sc, const uint8_t* mn, AffineFit* fits) {
  for (int j = 0; j < lay.n_sub; ++j) {
    fits[j].scale = d * static_cast<float>(sc[j]);
    fits[j].offset = -(dmin * static_cast<float>(mn[j]));
  }
}

// Returns true (and fills `out`) when the polish beat the stored choice.
bool polish_min_superblock(const float* x, const float* w, const MinLayout& lay, uint16_t d_h, uint16_t dmin_h,
                           const uint8_t* sc, const uint8_t* mn, MinChoice& out) {
  MinChoice cur;
  cur.d = f16_to_f32(d_h);
  cur.dmin = f16_to_f32(dmin_h);
  for (int j = 0; j < lay.n_sub; ++j) {
    cur.sc[j] = sc[j];
    cur.mn[j] = mn[j];
    cur.error += min_sub_error_lanes(x + j * lay.sub_size, w + j * lay.sub_size, lay.sub_size, lay.nmax, cur.d,
                                     cur.dmin, sc[j], mn[j], cur.L + j * lay.sub_size);
  }
  AffineFit fits[16];
  stored_min_fits(lay, cur.d, cur.dmin, sc, mn, fits);
  bool improved = false;
  for (int iter = 0; iter < 2; ++iter) {
    float d, dmin;
    if (!refit_min_superscales(x, w, lay, cur, d, dmin)) break;
    const uint16_t dh = f32_to_f16(d), mh = f32_to_f16(dmin);
    if (!std::isfinite(f16_to_f32(dh)) || !std::isfinite(f16_to_f32(mh))) break;
    const MinChoice c = choose_min_subscales(x, w, lay, fits, dh, mh, true);
    if (!(c.error < cur.error)) break;
    cur = c;
    improved = true;
  }
  if (improved) out = cur;
  return improved;
}

bool polish_sym_superblock(const float* x, const float* w, const SymLayout& lay, uint16_t d_h, const int* sc,
                           SymChoice& out) {
  SymChoice cur;
  cur.d = f16_to_f32(d_h);
  float s[16];
  for (int j = 0; j < 16; ++j) {
    cur.sc[j] = sc[j];
    s[j] = cur.d * static_cast<float>(sc[j]);
    cur.error += sym_sub_error_lanes(x + 16 * j, w + 16 * j, lay, cur.d, sc[j], cur.q + 16 * j);
  }
  bool improved = false;
  for (int iter = 0; iter < 2; ++iter) {
    double sxa = 0, saa = 0;
    for (int e = 0; e < kQKK; ++e) {
      const double a = static_cast<double>(cur.sc[e / 16]) * cur.q[e];
      sxa += w[e] * x[e] * a;
      saa += w[e] * a * a;
    }
    if (!(saa > 0)) break;
    const uint16_t dh = f32_to_f16(static_cast<float>(sxa / saa));
    if (!std::isfinite(f16_to_f32(dh))) break;
    const SymChoice c = choose_sym_subscales(x, w, lay, s, dh, true);
    if (!(c.error < cur.error)) break;
    cur = c;
    improved = true;
  }
  if (improved) out = cur;
  return improved;
}

template <typename Block>
void k4_stored_scales(const Block& b, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < 8; ++j) unpack_k4_scale_min(b.scales, j, sc[j], mn[j]);
}

bool polish_q4_k(const float* x, const float* w, const Q4_K& stored, Q4_K& b) {
  uint8_t sc[8], mn[8];
  k4_stored_scales(stored, sc, mn);
  MinChoice c;
  if (!polish_min_superblock(x, w, kQ4KLayout, stored.d, stored.dmin, sc, mn, c)) return false;
  pack_q4_k(c, b);
  return true;
}

bool polish_q5_k(const float* x, const float* w, const Q5_K& stored, Q5_K& b) {
  uint8_t sc[8], mn[8];
  k4_stored_scales(stored, sc, mn);
  MinChoice c;
  if (!polish_min_superblock(x, w, kQ5KLayout, stored.d, stored.dmin, sc, mn, c)) return false;
  pack_q5_k(c, b);
  return true;
}

bool polish_q2_k(const float* x, const float* w, const Q2_K& stored, Q2_K& b) {
  uint8_t sc[16], mn[16];
  for (int j = 0; j < 16; ++j) {
    sc[j] = stored.scales[j] & 0xF;
    mn[j] = static_cast<uint8_t>(stored.scales[j] >> 4);
  }
  MinChoice c;
  if (!polish_min_superblock(x, w, kQ2KLayout, stored.d, stored.dmin, sc, mn, c)) return false;
  pack_q2_k(c, b);
  return true;
}

bool polish_q3_k(const float* x, const float* w, const Q3_K& stored, Q3_K& b) {
  int sc[16];
  for (int j = 0; j < 16; ++j) sc[j] = static_cast<int>(unpack_q3k_scale(stored.scales, j)) - 32;
  SymChoice c;
  if (!polish_sym_superblock(x, w, kQ3KLayout, stored.d, sc, c)) return false;
  pack_q3_k(c, b);
  return true;
}

bool polish_q6_k(const float* x, const float* w, const Q6_K& stored, Q6_K& b) {
  int sc[16];
  for (int j = 0; j < 16; ++j) sc[j] = stored.scales[j];
  SymChoice c;
  if (!polish_sym_superblock(x, w, kQ6KLayout, stored.d, sc, c)) return false;
  pack_q6_k(c, b);
  return true;
}

void search_q2_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q2_K, kQKK, ggml_chunk_q2_k, rebuilt<Q2_K, build_q2_k>>(DType::Q2_K, x, dst, n, importance);
}
void search_q3_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q3_K, kQKK, ggml_chunk_q3_k, rebuilt<Q3_K, build_q3_k>>(DType::Q3_K, x, dst, n, importance);
}
void search_q4_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q4_K, kQKK, ggml_chunk_q4_k, rebuilt<Q4_K, build_q4_k>>(DType::Q4_K, x, dst, n, importance);
}
void search_q5_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q5_K, kQKK, ggml_chunk_q5_k, rebuilt<Q5_K, build_q5_k>>(DType::Q5_K, x, dst, n, importance);
}
void search_q6_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q6_K, kQKK, ggml_chunk_q6_k, rebuilt<Q6_K, build_q6_k>>(DType::Q6_K, x, dst, n, importance);
}

void fast_q2_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q2_K, kQKK, ggml_chunk_q2_k, polish_q2_k>(DType::Q2_K, x, dst, n, importance);
}
void fast_q3_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q3_K, kQKK, ggml_chunk_q3_k, polish_q3_k>(DType::Q3_K, x, dst, n, importance);
}
void fast_q4_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q4_K, kQKK, ggml_chunk_q4_k, polish_q4_k>(DType::Q4_K, x, dst, n, importance);
}
void fast_q5_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q5_K, kQKK, ggml_chunk_q5_k, polish_q5_k>(DType::Q5_K, x, dst, n, importance);
}
void fast_q6_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q6_K, kQKK, ggml_chunk_q6_k, polish_q6_k>(DType::Q6_K, x, dst, n, importance);
}

}  // namespace

SLMOPT_QUANT_DISPATCH_ROW(search_q2_k)
SLMOPT_QUANT_DISPATCH_ROW(search_q3_k)
SLMOPT_QUANT_DISPATCH_ROW(search_q4_k)
SLMOPT_QUANT_DISPATCH_ROW(search_q5_k)
SLMOPT_QUANT_DISPATCH_ROW(search_q6_k)
SLMOPT_QUANT_DISPATCH_ROW(fast_q2_k)
SLMOPT_QUANT_DISPATCH_ROW(fast_q3_k)
SLMOPT_QUANT_DISPATCH_ROW(fast_q4_k)
SLMOPT_QUANT_DISPATCH_ROW(fast_q5_k)
SLMOPT_QUANT_DISPATCH_ROW(fast_q6_k)

}  // namespace slmopt::quant_detail
