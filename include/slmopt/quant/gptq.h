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
// Precision and speed: the Hessian is damped and permuted in double, then factored in F32 as U = P·L⁻¹·P
// (quant/inverse_cholesky.h: one blocked Cholesky and one blocked triangular inverse, 2n³/3 flops instead of the
// published 5n³/3), and the sweep runs in F32 with each lazy batch's trailing update as one exec/gemm.h product
// per row tile (the AVX-512 kernel where the CPU has it). Rows are independent given H, so they are processed in
// fixed tiles of 64 rows in parallel; every product has gemm.h's fixed summation order, so the result is
// byte-identical for any thread count. Against the unblocked double transcription the codes agree except for
// values within F32 rounding of a decision boundary (tests/unit/gptq_test.cpp bounds how many).
//
// The factor depends only on H: linears that share an input (q/k/v, gate/up) factor once (gptq_factor).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "slmopt/core/huge_pages.h"
#include "slmopt/quant/weight_grid.h"

namespace slmopt {

struct GptqOptions {
  double damp_percent = 0.01;  // fraction of mean(diag H) added to the diagonal
  bool act_order = false;      // desc_act
  bool static_groups = false;  // forced on by act_order
  int64_t block_size = 128;    // columns per lazy batch
  // act-order permutes groups of this many consecutive columns (by Σ diag H), keeping each group whole: 8 when
  // a grid rounds 8 columns jointly (WeightGrid::joint_columns, the lattice i-quants). Must divide the columns.
  int64_t order_group = 1;
  int max_damp_raises = 8;     // ×10 each time Cholesky fails, then Error(Internal)
};

struct GptqStats {
  double damp_percent_used = 0;  // after any raises
  int damp_raises = 0;
  int64_t dead_columns = 0;
  double seconds = 0;         // factorisation (when done by this call) + sweep
  double factor_seconds = 0;  // the factorisation's part (0 when a shared factor was passed in)
  double flops = 0;           // floating-point operations of the factorisation (when done here) and the sweep
};

// What GPTQ derives from the Hessian alone, in the sweep's (act-order) column order.
struct GptqFactor {
  int64_t columns = 0;
  std::vector<int64_t> perm;  // sweep position → original column
  std::vector<char> dead;     // per original column: H_ii was 0 (the column is zeroed)
  HugeVector<float> u;        // [columns, columns] row-major, upper (zeros below): H⁻¹ = UᵀU (permuted, damped)
  double damp_percent_used = 0;
  int damp_raises = 0;
  double seconds = 0, flops = 0;
};

// hessian: [cols, cols], symmetric, undamped. Error(Internal) when no damp up to the last raise makes it
// positive definite; Error(Usage) for a non-positive damp.
GptqFactor gptq_factor(const Eigen::MatrixXd& hessian, const GptqOptions& options, const std::string& what = "weight");

// The sweep with a precomputed factor (stats get the sweep's time and flops only).
std::vector<float> gptq_quantize(std::span<const float> weight, const GptqFactor& factor, WeightGrid& grid,
                                 const GptqOptions& options, GptqStats* stats = nullptr,
                                 const std::string& what = "weight");

// weight: [rows, cols] row-major; hessian: [cols, cols], symmetric, undamped (left unchanged). The grid
// receives every code; the returned [rows, cols] floats are the grid values chosen. `what` names the tensor
// in warnings and errors.
std::vector<float> gptq_quantize(std::span<const float> weight, const Eigen::MatrixXd& hessian, WeightGrid& grid,
                                 const GptqOptions& options, GptqStats* stats = nullptr,
                                 const std::string& what = "weight");

// GPTAQ's asymmetric calibration (Li et al. 2025, "GPTQv2"/GPTAQ): with X̃ the inputs the already quantized
// blocks produce and X the float model's inputs, fit Ŵ so that ŴX̃ ≈ WX instead of ŴX̃ ≈ WX̃. The published
// sweep adds, when column j is rounded, w_j·P[j, j+1:] to the later columns (besides GPTQ's error feedback), with
//   P = α · triu₁(D·Uᵀ) · U,   D = 2·ΔXᵀX̃ / n (ΔX = X − X̃, the same scale as H),   H⁻¹ = UᵀU (gptq_factor),
// so each later column absorbs the asymmetry w_j·Δx_j of the columns before it. Here w_j is the float model's
// weight (the float output is W·X), which makes the whole correction independent of the rounding: it is added up
// front, W' = W + W·P, and the usual sweep runs on W' (equal to doing it inside the sweep). α = 0.25 is the
// published default (D and H are both estimated on the same few windows; the full α = 1 over-corrects).
//
// The products are exec/gemm.h's, over the thread pool in its fixed summation order (byte-identical at any thread
// count): in Eigen's single-threaded double they took minutes per block at the 1B shape (n = 5,632 for down).
//
// cross: D [cols, cols] in the original column order. Returns P in the sweep's order (factor.perm).
struct GptaqCorrection {
  int64_t columns = 0;
  HugeVector<float> p;  // [columns, columns] row-major, strictly upper
  float at(int64_t i, int64_t j) const { return p[static_cast<size_t>(i * columns + j)]; }
};
GptaqCorrection gptaq_correction(const GptqFactor& factor, const Eigen::MatrixXd& cross, double alpha);
// W + W·P for weight [rows, cols] row-major in the original order (dead columns contribute nothing).
std::vector<float> gptaq_target(std::span<const float> weight, int64_t rows, const GptqFactor& factor,
                                const GptaqCorrection& correction);

// Round-to-nearest on the same grid (groups fitted from the weights as they are), for comparisons.
std::vector<float> rtn_quantize(std::span<const float> weight, WeightGrid& grid);

}  // namespace slmopt
