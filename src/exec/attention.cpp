// Causal grouped-query attention. A unit of parallel work is one query head over a fixed block of query rows:
// its scores against the keys those rows may see, the masked softmax of each row, and the weighted sum of
// values. Within a block, positions a row may not see get probability exactly 0, so adding them into the
// value product changes nothing and keeps the product one dense Eigen call.
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "work_split.h"

namespace slmopt {
namespace {

using ConstStrided = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
using Strided = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;

// Query rows per work unit: fixed, so the split never depends on the thread count.
constexpr int64_t kQueryBlock = 64;

// Softmax over entries [first, end) of one scaled score row (soft-capped first when softcap > 0); the rest
// become 0.
void masked_softmax(float* row, int64_t first, int64_t end, int64_t n, float softcap) {
  if (softcap > 0)
    for (int64_t j = first; j < end; ++j) row[j] = softcap * std::tanh(row[j] / softcap);
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t j = first; j < end; ++j) max_score = std::max(max_score, row[j]);
  float sum = 0;
  for (int64_t j = first; j < end; ++j) {
    row[j] = std::exp(row[j] - max_score);
    sum += row[j];
  }
  for (int64_t j = first; j < end; ++j) row[j] /= sum;
  std::fill(row, row + first, 0.0f);
  std::fill(row + end, row + n, 0.0f);
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
  const float scale = shape.scale;
  const int64_t window = shape.window;
  // Work units are (head, block of kQueryBlock query rows); a block needs only the keys its rows see: up to its
  // last row's, and (sliding window) from its first row's oldest visible key on.
  const int64_t n_row_blocks = (tokens + kQueryBlock - 1) / kQueryBlock;
  const size_t min_chunk = min_chunk_for(2 * std::min(tokens, kQueryBlock) * n_keys * hd);
  parallel_for(
      static_cast<size_t>(shape.n_heads * n_row_blocks),
      [&](size_t begin, size_t end) {
        RowMatrix scores;
        for (size_t unit = begin; unit < end; ++unit) {
          const int64_t h = static_cast<int64_t>(unit) / n_row_blocks, g = h / group;
          const int64_t r0 = (static_cast<int64_t>(unit) % n_row_blocks) * kQueryBlock;
          const int64_t rows = std::min(kQueryBlock, tokens - r0), keys_end = past + r0 + rows;
          const int64_t k0 = window > 0 ? std::max<int64_t>(0, past + r0 - window + 1) : 0;
          const int64_t keys_seen = keys_end - k0;
          ConstStrided qh(q.data() + r0 * q.cols() + h * hd, rows, hd, Eigen::OuterStride<>(q.cols()));
          ConstStrided kh(keys.data() + k0 * keys.cols() + g * hd, keys_seen, hd, Eigen::OuterStride<>(keys.cols()));
          ConstStrided vh(values.data() + k0 * values.cols() + g * hd, keys_seen, hd,
                          Eigen::OuterStride<>(values.cols()));
          scores.resize(rows, keys_seen);
          scores.noalias() = qh * kh.transpose();
          scores *= scale;
          for (int64_t i = 0; i < rows; ++i) {
            const int64_t position = past + r0 + i;
            const int64_t first = window > 0 ? std::max<int64_t>(0, position - window + 1) - k0 : 0;
            masked_softmax(scores.data() + i * keys_seen, first, position + 1 - k0, keys_seen, shape.softcap);
          }
          Strided oh(out.data() + r0 * out.cols() + h * hd, rows, hd, Eigen::OuterStride<>(out.cols()));
          oh.noalias() = scores * vh;
        }
      },
      min_chunk);
}

}  // namespace slmopt
