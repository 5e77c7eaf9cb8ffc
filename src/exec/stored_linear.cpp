// Matrix products on stored weights. Output rows are cut into groups of 48; a thread decodes a group's weights
// one chunk of k (linear_kernels::kChunk = 1024) at a time into its own buffer (F32 weights are read in place)
// and runs the kernel set's dot-product tiles over every token, so each weight value is decoded once per call,
// the decoded slice stays in L2 and each register tile of tokens stays in L1 while it sweeps the group. The
// kernels fix the summation order of every output (linear_kernels.h), so neither the grouping, the thread
// count, the number of tokens nor the instruction set changes a bit of the result.
#include "slmopt/exec/stored_linear.h"

#include <algorithm>
#include <vector>

#include "linear_kernels.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/cpu_features.h"
#include "slmopt/ir/block_formats.h"
#include "work_split.h"

namespace slmopt {
namespace {

using linear_kernels::KernelSet;

const KernelSet& active_set() {
  switch (kernel_isa()) {
    case KernelIsa::Avx512: return linear_kernels::avx512_set();
    case KernelIsa::Avx2: return linear_kernels::avx2_set();
    case KernelIsa::Portable: break;
  }
  return linear_kernels::portable_set();
}

// Weight rows per group: each group streams every token row past it once per chunk of k, so with many tokens
// the group must be wide enough to make that traffic small next to the arithmetic (2 flops per loaded float
// per row), and its decoded slice (48 rows × 1024 floats = 192 KiB) must stay in L2 (1 MiB on this machine's
// cores). With few tokens there is nothing to amortise: 12 rows (48 KiB) keep the decoded slice in L1.
int64_t group_rows(const KernelSet& set, int64_t tokens, int64_t out) {
  const int64_t wanted = tokens >= 16 ? 48 : 12;
  return std::min(out, std::max(set.reg_cols, wanted / set.reg_cols * set.reg_cols));
}

// Decodes columns [k0, k0+len) of `rows` rows of `dtype` (row r at src + r*stride) into dst (len floats a row).
void decode_slice(const KernelSet& set, DType dtype, const uint8_t* src, size_t stride, int64_t k0, int64_t rows,
                  int64_t len, float* dst) {
  const uint8_t* first = src + row_bytes(dtype, k0);
  if (set.decode_rows(dtype, first, stride, rows, len, dst)) return;
  for (int64_t r = 0; r < rows; ++r) dequantize_row(dtype, first + static_cast<size_t>(r) * stride, dst + r * len, len);
}

struct Product {
  const RowMatrix& x;
  const Tensor* stored;      // null for an F32 weight in memory
  const float* f32_weight;   // when stored is null
  int64_t out;
  const float* bias;
  RowMatrix& y;
};

// y[:, r0:r0+rows] for row groups [begin, end), one chunk of k at a time.
void run_groups(const KernelSet& set, const Product& p, int64_t group, size_t begin, size_t end) {
  thread_local std::vector<float> decoded;
  const int64_t in = p.x.cols(), tokens = p.x.rows();
  const size_t stride = p.stored ? row_bytes(p.stored->dtype(), in) : 0;
  for (size_t g = begin; g < end; ++g) {
    const int64_t r0 = static_cast<int64_t>(g) * group;
    const int64_t rows = std::min(group, p.out - r0);
    for (int64_t k0 = 0; k0 < in; k0 += linear_kernels::kChunk) {
      const int64_t len = std::min(linear_kernels::kChunk, in - k0);
      const float* w = nullptr;
      int64_t ldw = in;
      if (p.stored) {
        decoded.resize(static_cast<size_t>(rows * len));
        decode_slice(set, p.stored->dtype(), p.stored->data() + static_cast<size_t>(r0) * stride, stride, k0, rows,
                     len, decoded.data());
        w = decoded.data();
        ldw = len;
      } else {
        w = p.f32_weight + r0 * in + k0;
      }
      const bool last = k0 + len >= in;
      set.dot_tile(p.x.data() + k0, in, tokens, w, ldw, rows, len, k0 > 0, last && p.bias ? p.bias + r0 : nullptr,
                   p.y.data() + r0, p.out);
    }
  }
}

void run(const Product& p) {
  const int64_t tokens = p.x.rows(), in = p.x.cols();
  p.y.resize(tokens, p.out);
  if (tokens == 0 || p.out == 0) return;
  if (in == 0) {  // empty sums: the bias alone
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t n = 0; n < p.out; ++n) p.y(t, n) = p.bias ? p.bias[n] : 0.0f;
    return;
  }
  const KernelSet& set = active_set();
  const int64_t group = group_rows(set, tokens, p.out);
  const int64_t n_groups = (p.out + group - 1) / group;
  parallel_for(
      static_cast<size_t>(n_groups), [&](size_t begin, size_t end) { run_groups(set, p, group, begin, end); },
      min_chunk_for(tokens * in * group));
}

}  // namespace

void linear_stored(const RowMatrix& x, const Tensor& weight, const float* bias, RowMatrix& y) {
  if (weight.rank() != 2)
    throw_error(ErrorKind::Internal, "linear_stored: '{}' is not a matrix", weight.name());
  const int64_t out = weight.dim(0), in = weight.dim(1);
  if (x.cols() != in)
    throw_error(ErrorKind::Internal, "linear_stored: input has {} columns, '{}' expects {}", x.cols(), weight.name(),
                in);
  if (weight.dtype() == DType::F32)
    run({x, nullptr, reinterpret_cast<const float*>(weight.data()), out, bias, y});
  else
    run({x, &weight, nullptr, out, bias, y});
}

void linear_f32(const RowMatrix& x, const float* weight, int64_t out, const float* bias, RowMatrix& y) {
  run({x, nullptr, weight, out, bias, y});
}

void decode_stored_rows(DType dtype, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, float* dst) {
  decode_slice(active_set(), dtype, src, row_bytes, 0, rows, cols, dst);
}

void gather_rows(const Tensor& table, std::span<const int32_t> ids, RowMatrix& out) {
  if (table.rank() != 2) throw_error(ErrorKind::Internal, "gather_rows: '{}' is not a matrix", table.name());
  const int64_t rows = table.dim(0), cols = table.dim(1);
  out.resize(static_cast<int64_t>(ids.size()), cols);
  const KernelSet& set = active_set();
  const size_t stride = row_bytes(table.dtype(), cols);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= rows)
      throw_error(ErrorKind::BadInput, "token id {} at position {} is outside '{}' ({} rows)", id, i, table.name(),
                  rows);
    decode_slice(set, table.dtype(), table.data() + static_cast<size_t>(id) * stride, stride, 0, 1, cols,
                 out.data() + static_cast<int64_t>(i) * cols);
  }
}

}  // namespace slmopt
