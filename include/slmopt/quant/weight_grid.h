// The grid a rounding algorithm (RTN, GPTQ, AWQ) puts one linear weight [rows, cols] onto: for every element, a
// finite set of representable values described by per-row parameters and an integer code. Two families:
//   * IntWeightGrid (int_grid.h): integer codes with per-(row, group) scale and zero, for HF GPTQ/AWQ output;
//   * GGUF block grids (gguf_grid.h): the scales of a GGUF block type, so the result packs into stock blocks.
// Rows are independent: parameters are per row, so algorithms may process distinct rows on distinct threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slmopt/quant/int_grid.h"

namespace slmopt {

class WeightGrid {
 public:
  virtual ~WeightGrid() = default;
  virtual int64_t rows() const = 0;
  virtual int64_t cols() const = 0;
  // Columns sharing one set of parameters (consecutive, in the original column order).
  virtual int64_t group_columns() const = 0;
  // True when the parameters were fixed at construction (GGUF grids fit their block scales from the original
  // weights): fit_group must then not be called.
  virtual bool fixed() const = 0;
  // Fits the parameters of (row, group) to the group's current values (group_columns() of them).
  virtual void fit_group(int64_t row, int64_t group, std::span<const double> values) = 0;
  // Rounds value at (row, col) onto the grid, records its code and returns the grid value (a float, exactly
  // what decoding the stored code gives).
  virtual float quantize(int64_t row, int64_t col, double value) = 0;
  // quantize() of column `col` in rows row0 .. row0 + n − 1 (values[r] at row row0 + r; grid values to out[r]):
  // the same codes and values, one call per column of a row tile (GPTQ's sweep) instead of one per element.
  virtual void quantize_column(int64_t row0, int64_t n, int64_t col, const float* values, float* out);
  // Columns rounded together (consecutive in the original order, starting at multiples of it): 1 for per-element
  // grids; 8 for the lattice i-quants, whose codebook points cover 8 values. When above 1, quantize() is not
  // called: GPTQ and RTN call quantize_joint once per such group instead.
  virtual int64_t joint_columns() const { return 1; }
  // Rounds values[0 .. joint_columns()) at (row, col0 ..) jointly to the representable tuple minimising
  // Σ weights[c]·(values[c] − q[c])², records it and writes the grid values to out. weights null: keep the
  // grid's own choice for that group (the encoder's rounding, what RTN means for these grids).
  virtual void quantize_joint(int64_t row, int64_t col0, const double* values, const double* weights, float* out);
};

// An integer grid (see int_grid.h) that records codes and parameters into an GridQuantizedWeight.
class IntWeightGrid final : public WeightGrid {
 public:
  IntWeightGrid(int64_t rows, int64_t cols, const IntGridSpec& spec);
  int64_t rows() const override { return result_.rows; }
  int64_t cols() const override { return result_.cols; }
  int64_t group_columns() const override { return result_.spec.group_columns(result_.cols); }
  bool fixed() const override { return false; }
  void fit_group(int64_t row, int64_t group, std::span<const double> values) override;
  float quantize(int64_t row, int64_t col, double value) override;

  // Optional per-(row, group) clip ratios applied by fit_group (AWQ's clipping search); empty: 1.
  void set_clip(std::vector<double> clip) { clip_ = std::move(clip); }
  const GridQuantizedWeight& result() const { return result_; }
  GridQuantizedWeight take() { return std::move(result_); }

 private:
  GridQuantizedWeight result_;
  std::vector<double> clip_;
};

}  // namespace slmopt
