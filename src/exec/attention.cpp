// Causal grouped-query attention. Each query head is one unit of parallel work: its scores (T × n_keys), the
// masked softmax of each row, and the weighted sum of values. Masked positions get probability exactly 0, so
// adding them into the value product changes nothing and keeps the product one dense Eigen call.
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"

namespace slmopt {
namespace {

using ConstStrided = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
using Strided = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;

// Softmax over the first `visible` entries of one scaled score row; the rest become 0.
void masked_softmax(float* row, int64_t visible, int64_t n) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < visible; ++j) max_score = std::max(max_score, row[j]);
  float sum = 0;
  for (int64_t j = 0; j < visible; ++j) {
    row[j] = std::exp(row[j] - max_score);
    sum += row[j];
  }
  for (int64_t j = 0; j < visible; ++j) row[j] /= sum;
  std::fill(row + visible, row + n, 0.0f);
}

}  // namespace

void causal_attention(const RowMatrix& q, const RowMatrix& keys, const RowMatrix& values, int64_t n_keys,
                      int64_t past, const AttentionShape& shape, RowMatrix& out) {
  const int64_t tokens = q.rows(), hd = shape.head_dim;
  if (q.cols() != shape.n_heads * hd || keys.cols() != shape.n_kv_heads * hd || values.cols() != keys.cols() ||
      keys.rows() < n_keys || values.rows() < n_keys || n_keys != past + tokens ||
      shape.n_heads % shape.n_kv_heads != 0)
    throw_error(ErrorKind::Internal, "attention: inconsistent shapes (q {}x{}, keys {}x{}, {} keys, past {})",
                q.rows(), q.cols(), keys.rows(), keys.cols(), n_keys, past);
  out.resize(tokens, q.cols());
  if (tokens == 0) return;
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const int64_t flops_per_head = 2 * tokens * n_keys * hd;
  const size_t min_chunk = static_cast<size_t>(std::max<int64_t>(1, (1 << 17) / std::max<int64_t>(1, flops_per_head)));
  parallel_for(
      static_cast<size_t>(shape.n_heads),
      [&](size_t begin, size_t end) {
        RowMatrix scores(tokens, n_keys);
        for (size_t head = begin; head < end; ++head) {
          const int64_t h = static_cast<int64_t>(head), g = h / group;
          ConstStrided qh(q.data() + h * hd, tokens, hd, Eigen::OuterStride<>(q.cols()));
          ConstStrided kh(keys.data() + g * hd, n_keys, hd, Eigen::OuterStride<>(keys.cols()));
          ConstStrided vh(values.data() + g * hd, n_keys, hd, Eigen::OuterStride<>(values.cols()));
          scores.noalias() = qh * kh.transpose();
          scores *= scale;
          for (int64_t i = 0; i < tokens; ++i) masked_softmax(scores.data() + i * n_keys, past + i + 1, n_keys);
          Strided oh(out.data() + h * hd, tokens, hd, Eigen::OuterStride<>(out.cols()));
          oh.noalias() = scores * vh;
        }
      },
      min_chunk);
}

}  // namespace slmopt
