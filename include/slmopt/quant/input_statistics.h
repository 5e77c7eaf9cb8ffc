// What calibration learns about the input of one linear layer (or of several that share it): the sum of
// xᵀx over every calibration row, in double, and the sum of |x| per column. GPTQ's Hessian H = 2·XᵀX/n, AWQ's
// per-channel activation magnitude, and the output error of any quantized weight on the calibration data all
// follow from these two, so no activation is kept after its block has been seen.
//
// Output error: for a weight W [out, in] and its quantized Ŵ, ||XWᵀ − XŴᵀ||² = Σ_rows dᵀ(XᵀX)d with d = w − ŵ,
// so relative_output_error needs only XᵀX.
#pragma once

#include <cstdint>
#include <span>

#include <Eigen/Core>

#include "slmopt/core/huge_pages.h"
#include "slmopt/exec/matrix.h"

namespace slmopt {

// Adds an n×n row-major F32 product to the column-major double `total` (n×n), over the thread pool by fixed tiles of
// columns, walking the product row by row within a tile: one addition per element, so any split gives the same
// sums. `upper_only`: the product holds only its upper triangle (GemmTriangle::UpperOnly of a symmetric xᵀx) and
// the total takes the lower half mirrored. A walk along the product's rows alone strides the column-major total
// by a whole column per element: at the 1B shape's FFN width (5,632) that was most of GPTAQ's time.
void add_product_to_total(Eigen::MatrixXd& total, const float* product, bool upper_only);

class InputStatistics {
 public:
  explicit InputStatistics(int64_t columns = 0);

  // Adds the rows of x [T, columns]: xᵀx as an F32 product (exec/gemm.h, fixed order), added to the double
  // total. Deterministic for any thread count.
  void add(const RowMatrix& x);

  int64_t columns() const { return xtx_.cols(); }
  int64_t rows() const { return rows_; }
  const Eigen::MatrixXd& xtx() const { return xtx_; }  // Σ xᵀx (both triangles)
  Eigen::MatrixXd hessian() const;                    // 2·XᵀX / rows (GPTQ's H)
  Eigen::VectorXd mean_abs() const;                   // mean |x| per column

 private:
  Eigen::MatrixXd xtx_;
  Eigen::VectorXd abs_sum_;
  int64_t rows_ = 0;
};

// sqrt(Σ dᵀGd / Σ wᵀGw) over the rows of `weight` and `quantized` ([rows, cols] row-major) with G = gram
// (any positive multiple of XᵀX): the relative output error ||XWᵀ − XŴᵀ|| / ||XWᵀ||. 0 when the output is 0.
// sample_rows > 0: over that many evenly spaced rows (row ⌊i·rows/sample_rows⌋) when rows exceed twice as many,
// an estimate at 1/(rows/sample_rows) of the cost; 0: every row.
double relative_output_error(std::span<const float> weight, std::span<const float> quantized, int64_t rows,
                             const Eigen::MatrixXd& gram, int64_t sample_rows = 0);

// Σ_r (w_r − ŵ_r)ᵀ·G·(w_r − ŵ_r) over every row of [rows, cols] row-major pairs: the unnormalised output error
// ||XWᵀ − XŴᵀ||² for G = XᵀX, which adds up over linears that share an input. G is converted to F32 once, for
// callers that score many candidates against one input (AWQ's scale search). weight_form (optional) receives
// Σ_r w_rᵀ·G·w_r.
class OutputErrorForm {
 public:
  explicit OutputErrorForm(const Eigen::MatrixXd& gram);
  double operator()(std::span<const float> weight, std::span<const float> quantized, int64_t rows,
                    double* weight_form = nullptr) const;

 private:
  int64_t cols_;
  HugeVector<float> gram_;  // row-major
};

}  // namespace slmopt
