// GPTQ (Frantar et al. 2022): rounds a linear weight onto a grid one input column at a time, spreading each
// column's rounding error over the columns not yet rounded so that the layer's output on calibration inputs
// changes as little as possible (optimal brain surgeon updates with the inverse Hessian H⁻¹, H = 2·XᵀX/n).
//
// Algorithm (the published one):
//   dead columns (H_ii = 0) get H_ii = 1 and W[:, i] = 0; H += damp·mean(diag H)·I (damp ×10 and a warning
//   whenever a Cholesky factorisation fails); act-order permutes columns by descending diag H; U = upper Cholesky
//   factor of H⁻¹; columns are swept in blocks of block_size: each column is rounded, its error scaled by 1/U_jj is
//   subtracted from the rest of the block through row j of U, and each block's errors reach all later columns in
//   one matrix product (lazy batch updates).
// Groups: grid parameters are fitted when the sweep reaches a group's first column, from that moment's values
// (the published code fits from the values at the start of the 128-column block, which ignores updates made
// earlier in the same block; the difference is a small improvement and keeps the blocked sweep equal to the
// unblocked one). static_groups fits every group from the (dead-column-zeroed) original weights before the sweep;
// act-order always uses static groups, so checkpoints need no reordering index (g_idx[i] = i / group).
//
// Precision and determinism: double throughout (H, its factors, the sweep). Rows are independent given H, so
// they are processed in fixed tiles of 64 rows in parallel; the result is byte-identical for any thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "slmopt/quant/weight_grid.h"

namespace slmopt {

struct GptqOptions {
  double damp_percent = 0.01;  // fraction of mean(diag H) added to the diagonal
  bool act_order = false;      // desc_act
  bool static_groups = false;  // forced on by act_order
  int64_t block_size = 128;    // columns per lazy batch
  int max_damp_raises = 8;     // ×10 each time Cholesky fails, then Error(Internal)
};

struct GptqStats {
  double damp_percent_used = 0;  // after any raises
  int damp_raises = 0;
  int64_t dead_columns = 0;
  double seconds = 0;
  double flops = 0;  // floating-point operations of the factorisations and the sweep (estimate)
};

// weight: [rows, cols] row-major; hessian: [cols, cols], symmetric, undamped (left unchanged). The grid
// receives every code; the returned [rows, cols] floats are the grid values chosen. `what` names the tensor
// in warnings and errors.
std::vector<float> gptq_quantize(std::span<const float> weight, const Eigen::MatrixXd& hessian, WeightGrid& grid,
                                 const GptqOptions& options, GptqStats* stats = nullptr,
                                 const std::string& what = "weight");

// Round-to-nearest on the same grid (groups fitted from the weights as they are), for comparisons.
std::vector<float> rtn_quantize(std::span<const float> weight, WeightGrid& grid);

}  // namespace slmopt
