// The Hessian GPTQ rounds the token embedding with. The embedding is a lookup, so it has no calibration inputs
// and no XᵀX: its rows go into the residual stream, which every block reads through a norm. To first order an
// error δ in a token's row reaches each reader W [out, hidden] behind a norm of gain g as W·diag(g)·δ / rms(x), x
// the residual there, so the output error it causes is δᵀ·H·δ with
//
//   H = Σ_readers E[1/ms(x)] · diag(g)·WᵀW·diag(g)        (ms = mean(x²) + eps over the hidden channels)
//
// summed over the q/k/v and gate/up linears of every block and the output head behind the final norm, each with
// the mean inverse square of the residual it reads on the calibration windows. This ignores the norm's
// projection (an error along x itself is normalised away) and how the blocks transform the error on its way;
// it keeps what matters to the rounding: which directions of the hidden space the model reads, and how strongly.
// With H, GPTQ spreads each row's rounding error into the directions the readers are least sensitive to.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "slmopt/exec/matrix.h"
#include "slmopt/ir/tensor.h"

namespace slmopt {

class EmbeddingHessian {
 public:
  explicit EmbeddingHessian(int64_t hidden);

  // Adds E[1/ms]·diag(g)·WᵀW·diag(g) for each reader W [out, hidden]. gain: the norm's weight (null: no norm,
  // gain 1); unit_offset: the stored weight w scales by 1 + w (Gemma).
  void add_readers(const Tensor* gain, bool unit_offset, const std::vector<const Tensor*>& readers,
                   double inverse_mean_square);

  const Eigen::MatrixXd& hessian() const { return h_; }
  int64_t readers() const { return readers_; }

 private:
  Eigen::MatrixXd h_;
  int64_t readers_ = 0;
};

// E[1/(mean(x²) + eps)] over every row of the residual matrices (one per calibration window), summed in window
// and row order.
double mean_inverse_square(const std::vector<RowMatrix>& residual, double eps);

}  // namespace slmopt
