// The scale searches behind slmopt's default encoders (private to src/quant).
//
// A group of n weights x with element weights w (importance, or 1) is approximated either symmetrically,
// x̂ = d·v(k) with v a sorted level grid, or affinely, x̂ = s·q + o with q in 0..nmax. The objective is always
// the weighted squared error Σ w (x − x̂)², the quantity the encoders are judged by.
//
// fit_symmetric_sweep finds the best scale exactly (before the scale itself is stored in f16) within a window
// of candidate scales: as 1/d grows, each element's nearest level changes only at the midpoints between levels,
// so sorting those crossing points and updating Σ w·x·v and Σ w·v² incrementally visits every distinct
// assignment once, and for each the least-squares scale gives error Σ w x² − (Σ w x v)² / Σ w v². ggml instead
// tries 19 (or 15) fixed scales. The affine fit has two parameters, so it samples scales on a finer grid than
// ggml and alternates least squares with re-rounding.
#pragma once

#include <algorithm>
#include <cstdint>

#include "quant_math.h"

namespace slmopt::quant_detail {

// A sorted set of reconstruction levels: the integers lo..hi, or a table (IQ4_NL).
class LevelGrid {
 public:
  static LevelGrid uniform(int lo, int hi) { return LevelGrid(lo, hi, nullptr); }
  static LevelGrid table(const int8_t* values, int count) { return LevelGrid(0, count - 1, values); }

  int size() const { return hi_ - lo_ + 1; }
  float value(int k) const { return table_ ? static_cast<float>(table_[k]) : static_cast<float>(lo_ + k); }
  float midpoint(int k) const { return 0.5f * (value(k) + value(k + 1)); }
  float max_abs() const { return value(0) < 0 && -value(0) > value(size() - 1) ? -value(0) : value(size() - 1); }
  bool is_uniform() const { return table_ == nullptr; }
  // Index of the level nearest to v (ties to even for integer grids, to the upper level for tables).
  int nearest(float v) const {
    if (!table_) return clamp_int(nearest_int(std::clamp(v, -4e6f, 4e6f)), lo_, hi_) - lo_;
    return nearest_in_table(v);
  }

 private:
  LevelGrid(int lo, int hi, const int8_t* table) : lo_(lo), hi_(hi), table_(table) {}
  int nearest_in_table(float v) const;
  int lo_, hi_;
  const int8_t* table_;
};

// Best signed scale d with |1/d|·max|x| in [window_lo, window_hi] (in level units); 0 for an all-zero group.
float fit_symmetric_sweep(const float* x, const float* w, int n, const LevelGrid& grid, float window_lo,
                          float window_hi);

// Assigns each element its nearest level for `scale` (levels[i] = grid index) and returns the weighted error of
// x̂ = scale·v, computed in float exactly as the decoders compute x̂.
double symmetric_assign(const float* x, const float* w, int n, const LevelGrid& grid, float scale, uint8_t* levels);

// Least-squares scale for fixed levels; 0 when every level value is 0.
float symmetric_ls_scale(const float* x, const float* w, int n, const LevelGrid& grid, const uint8_t* levels);

// Stores `scale` as f16, re-rounds, refits, and tries neighbouring f16 values; returns the best f16 scale with
// its levels and error. `best_error` may hold the error of a competing candidate (so only strict improvements
// are reported): the function returns false if it found nothing better.
bool refine_symmetric_f16(const float* x, const float* w, int n, const LevelGrid& grid, float scale,
                          uint16_t& best_f16, uint8_t* best_levels, double& best_error);

struct AffineFit {
  float scale = 0;   // s >= 0
  float offset = 0;  // o, constrained to o <= 0 when the type stores a subtracted minimum
  double error = 0;
};

// Best x̂ = s·q + o, q in 0..nmax: samples 1/s at `steps`+1 points of [(nmax+r_lo)/range, (nmax+r_hi)/range],
// each scored by least squares on its rounded levels, then refines the best `refined_starts` (at most 8) by
// alternating re-rounding and least squares.
AffineFit fit_affine(const float* x, const float* w, int n, int nmax, bool nonpositive_offset, int steps,
                     float r_lo, float r_hi, int refined_starts = 3);

// Levels for given scale and offset (floats as the decoder sees them) and the weighted error.
double affine_assign(const float* x, const float* w, int n, int nmax, float scale, float offset, uint8_t* levels);

// Least-squares (scale, offset) for fixed levels; returns false when the levels cannot determine them.
bool affine_ls(const float* x, const float* w, int n, const uint8_t* levels, bool nonpositive_offset, float& scale,
               float& offset);

}  // namespace slmopt::quant_detail
