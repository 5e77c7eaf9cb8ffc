// See embedding_hessian.h.
#include "slmopt/quant/embedding_hessian.h"

#include "slmopt/core/error.h"
#include "slmopt/core/huge_pages.h"
#include "slmopt/exec/gemm.h"

namespace slmopt {

EmbeddingHessian::EmbeddingHessian(int64_t hidden) : h_(Eigen::MatrixXd::Zero(hidden, hidden)) {}

void EmbeddingHessian::add_readers(const Tensor* gain, bool unit_offset, const std::vector<const Tensor*>& readers,
                                   double inverse_mean_square) {
  const int64_t n = h_.cols();
  std::vector<double> g(static_cast<size_t>(n), 1.0);
  if (gain) {
    const std::vector<float> w = gain->to_f32();
    if (static_cast<int64_t>(w.size()) != n)
      throw_error(ErrorKind::Internal, "embedding Hessian: norm '{}' has {} entries, hidden size {}", gain->name(),
                  w.size(), n);
    for (int64_t i = 0; i < n; ++i) g[static_cast<size_t>(i)] = unit_offset ? 1.0 + w[static_cast<size_t>(i)] : w[static_cast<size_t>(i)];
  }
  // Σ WᵀW over the readers as F32 products in fixed order (exec/gemm.h), then scaled in double.
  HugeVector<float> gram(static_cast<size_t>(n * n), 0.0f);
  for (const Tensor* reader : readers) {
    if (reader->cols() != n)
      throw_error(ErrorKind::Internal, "embedding Hessian: reader '{}' has {} columns, hidden size {}", reader->name(),
                  reader->cols(), n);
    const std::vector<float> w = reader->to_f32();
    gemm_accumulate_parallel({n, n, reader->rows(), w.data(), 1, n, w.data(), n, gram.data(), n});
    ++readers_;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      h_(i, j) += inverse_mean_square * g[static_cast<size_t>(i)] * g[static_cast<size_t>(j)] *
                  static_cast<double>(gram[static_cast<size_t>(i * n + j)]);
}

double mean_inverse_square(const std::vector<RowMatrix>& residual, double eps) {
  double sum = 0;
  int64_t rows = 0;
  for (const RowMatrix& x : residual)
    for (int64_t r = 0; r < x.rows(); ++r) {
      const double ms = static_cast<double>(x.row(r).squaredNorm()) / static_cast<double>(x.cols());
      sum += 1.0 / (ms + eps);
      ++rows;
    }
  return rows > 0 ? sum / static_cast<double>(rows) : 0.0;
}

}  // namespace slmopt
