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
