// Reference implementation: each block of output rows is decoded into a per-call float buffer with
// Tensor::rows_to_f32 and multiplied with one Eigen product. F32 weights are mapped directly, without a copy.
#include "slmopt/exec/stored_linear.h"

#include <algorithm>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/kernels.h"
#include "work_split.h"

namespace slmopt {

void linear_stored(const RowMatrix& x, const Tensor& weight, const float* bias, RowMatrix& y) {
  if (weight.rank() != 2)
    throw_error(ErrorKind::Internal, "linear_stored: '{}' is not a matrix", weight.name());
  const int64_t out = weight.dim(0), in = weight.dim(1), tokens = x.rows();
  if (x.cols() != in)
    throw_error(ErrorKind::Internal, "linear_stored: input has {} columns, '{}' expects {}", x.cols(), weight.name(),
                in);
  y.resize(tokens, out);
  if (tokens == 0 || out == 0) return;
  const bool is_f32 = weight.dtype() == DType::F32;
  const int64_t n_blocks = (out + kLinearBlockCols - 1) / kLinearBlockCols;
  parallel_for(
      static_cast<size_t>(n_blocks),
      [&](size_t begin, size_t end) {
        std::vector<float> decoded;
        for (size_t block = begin; block < end; ++block) {
          const int64_t r0 = static_cast<int64_t>(block) * kLinearBlockCols;
          const int64_t rows = std::min(kLinearBlockCols, out - r0);
          const float* w = nullptr;
          if (is_f32) {
            w = reinterpret_cast<const float*>(weight.data()) + r0 * in;
          } else {
            decoded.resize(static_cast<size_t>(rows * in));
            weight.rows_to_f32(r0, r0 + rows, decoded.data());
            w = decoded.data();
          }
          const Eigen::Map<const RowMatrix> w_block(w, rows, in);
          auto y_block = y.middleCols(r0, rows);
          y_block.noalias() = x * w_block.transpose();
          if (bias) y_block.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias + r0, rows);
        }
      },
      min_chunk_for(tokens * in * kLinearBlockCols));
}

void gather_rows(const Tensor& table, std::span<const int32_t> ids, RowMatrix& out) {
  if (table.rank() != 2) throw_error(ErrorKind::Internal, "gather_rows: '{}' is not a matrix", table.name());
  const int64_t rows = table.dim(0), cols = table.dim(1);
  out.resize(static_cast<int64_t>(ids.size()), cols);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= rows)
      throw_error(ErrorKind::BadInput, "token id {} at position {} is outside '{}' ({} rows)", id, i, table.name(),
                  rows);
    table.rows_to_f32(id, id + 1, out.data() + static_cast<int64_t>(i) * cols);
  }
}

}  // namespace slmopt
