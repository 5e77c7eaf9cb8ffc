// GGUF block grids (see gguf_grid.h): per-type code packing, level tables by decoding, nearest-level rounding.
#include "slmopt/quant/gguf_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <Eigen/Cholesky>

#include "iquant_encoders.h"
#include "kquant_pack.h"
#include "simd_dispatch.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/block_formats.h"
#include "slmopt/ir/block_structs.h"
#include "slmopt/quant/block_quantize.h"

namespace slmopt {

namespace {

struct Layout {
  int64_t sub;     // elements sharing one scale
  int64_t levels;  // codes per element
};

Layout layout_of(DType t) {
  switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::IQ4_NL: return {32, 16};
    case DType::Q5_0: case DType::Q5_1: return {32, 32};
    case DType::Q8_0: return {32, 256};
    case DType::Q2_K: return {16, 4};
    case DType::Q3_K: return {16, 8};
    case DType::Q4_K: return {32, 16};
    case DType::Q5_K: return {32, 32};
    case DType::Q6_K: return {16, 64};
    case DType::IQ4_XS: return {32, 16};  // the lattice i-quants quantize 8 values jointly: no per-element grid
    default: return {0, 0};
  }
}

// Nibbles of the 32-element types: element j < 16 in the low nibble of qs[j], element j + 16 in the high one.
void put_nibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
}
void put_fifth_bits(const uint8_t* L, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < 32; ++j) bits |= static_cast<uint32_t>((L[j] >> 4) & 1) << j;
  std::memcpy(qh, &bits, 4);  // little-endian, as ggml reads it
}

// Writes the codes L (one per element, in the type's range) into `block`, keeping its scales.
void set_codes(DType t, uint8_t* block, const uint8_t* L) {
  using namespace blocks;
  using namespace quant_detail;
  switch (t) {
    case DType::Q4_0: put_nibbles(L, block + offsetof(Q4_0, qs)); break;
    case DType::IQ4_NL: put_nibbles(L, block + offsetof(IQ4_NL, qs)); break;
    case DType::Q4_1: put_nibbles(L, block + offsetof(Q4_1, qs)); break;
    case DType::Q5_0: put_nibbles(L, block + offsetof(Q5_0, qs)), put_fifth_bits(L, block + offsetof(Q5_0, qh)); break;
    case DType::Q5_1: put_nibbles(L, block + offsetof(Q5_1, qs)), put_fifth_bits(L, block + offsetof(Q5_1, qh)); break;
    case DType::Q8_0:
      for (int j = 0; j < 32; ++j) block[offsetof(Q8_0, qs) + static_cast<size_t>(j)] = static_cast<uint8_t>(L[j] - 128);
      break;
    case DType::Q2_K: pack_two_bit_levels(L, block + offsetof(Q2_K, qs)); break;
    case DType::Q3_K: pack_q3k_levels(L, block + offsetof(Q3_K, hmask), block + offsetof(Q3_K, qs)); break;
    case DType::Q4_K: pack_q4k_levels(L, block + offsetof(Q4_K, qs)); break;
    case DType::Q5_K: pack_q5k_levels(L, block + offsetof(Q5_K, qh), block + offsetof(Q5_K, qs)); break;
    case DType::Q6_K: pack_q6k_levels(L, block + offsetof(Q6_K, ql), block + offsetof(Q6_K, qh)); break;
    case DType::IQ4_XS:  // IQ4_NL's nibble order within each 32-element sub-block
      for (int k = 0; k < 8; ++k) put_nibbles(L + 32 * k, block + offsetof(IQ4_XS, qs) + 16 * k);
      break;
    default: throw_error(ErrorKind::Internal, "set_codes: {}", dtype_name(t));
  }
}

}  // namespace

bool gguf_grid_supported(DType dtype) { return layout_of(dtype).sub != 0 || quant_detail::is_lattice_type(dtype); }

GgufWeightGrid::GgufWeightGrid(std::span<const float> weight, int64_t rows, int64_t cols, DType dtype,
                               const float* importance, const std::string& what)
    : dtype_(dtype), rows_(rows), cols_(cols) {
  if (quant_detail::is_lattice_type(dtype)) {
    block_ = traits(dtype).block_size;
    sub_ = block_;
    levels_ = 0;
    if (cols % block_ != 0)
      throw_error(ErrorKind::Usage, "{}: {} columns are not a whole number of {}-element {} blocks", what, cols,
                  block_, dtype_name(dtype));
    if (static_cast<int64_t>(weight.size()) != rows * cols)
      throw_error(ErrorKind::Internal, "{}: weight size disagrees with [{}, {}]", what, rows, cols);
    lattice_ = std::make_unique<quant_detail::LatticeBlocks>(dtype, weight.data(), rows, cols, importance);
    return;
  }
  const Layout layout = layout_of(dtype);
  if (layout.sub == 0) throw_error(ErrorKind::Usage, "{}: GPTQ cannot round onto {}", what, dtype_name(dtype));
  block_ = traits(dtype).block_size;
  sub_ = layout.sub;
  levels_ = layout.levels;
  if (cols % block_ != 0)
    throw_error(ErrorKind::Usage, "{}: {} columns are not a whole number of {}-element {} blocks", what, cols, block_,
                dtype_name(dtype));
  if (static_cast<int64_t>(weight.size()) != rows * cols)
    throw_error(ErrorKind::Internal, "{}: weight size disagrees with [{}, {}]", what, rows, cols);
  const size_t row_size = row_bytes(dtype, cols);
  blocks_.resize(static_cast<size_t>(rows) * row_size);
  const int64_t subs = cols / sub_;
  // Row strides of whole cache lines, an odd number of them: GPTQ reads one column of many rows at a time, and
  // a power-of-two stride would put all those rows' lines in a few L1 sets.
  const auto odd_lines = [](int64_t bytes) {
    const int64_t lines = (bytes + 63) / 64;
    return (lines | 1) * 64;
  };
  table_row_ = odd_lines(subs * levels_ * static_cast<int64_t>(sizeof(float))) / static_cast<int64_t>(sizeof(float));
  code_row_ = odd_lines(cols);
  table_ = HugeVector<float>(static_cast<size_t>(rows * table_row_));
  codes_.assign(static_cast<size_t>(rows * code_row_), 0);
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      quantize_row(dtype, weight.data() + r * static_cast<size_t>(cols), blocks_.data() + r * row_size, cols, importance);
      build_table(static_cast<int64_t>(r));
    }
  });
  index_levels();
}

void GgufWeightGrid::build_table(int64_t r) {
  const size_t row_size = row_bytes(dtype_, cols_), block_bytes = traits(dtype_).block_bytes;
  std::vector<uint8_t> scratch(block_bytes), level(static_cast<size_t>(block_));
  std::vector<float> decoded(static_cast<size_t>(block_));
  const uint8_t* row = blocks_.data() + static_cast<size_t>(r) * row_size;
  for (int64_t b = 0; b < cols_ / block_; ++b) {
    std::memcpy(scratch.data(), row + static_cast<size_t>(b) * block_bytes, block_bytes);
    // A value depends only on its code and its sub-block's scales, not on its position: one decode gives
    // `sub_` levels of every sub-block at once (element i of each sub-block holds code q0 + i), so a block
    // takes ⌈levels/sub⌉ decodes instead of one per level.
    for (int64_t q0 = 0; q0 < levels_; q0 += sub_) {
      for (int64_t e = 0; e < block_; ++e)
        level[static_cast<size_t>(e)] = static_cast<uint8_t>(std::min(levels_ - 1, q0 + e % sub_));
      set_codes(dtype_, scratch.data(), level.data());
      dequantize_row(dtype_, scratch.data(), decoded.data(), block_);
      for (int64_t s = 0; s < block_ / sub_; ++s)
        for (int64_t i = 0; i < sub_ && q0 + i < levels_; ++i)
          table_[static_cast<size_t>(r * table_row_ + (b * (block_ / sub_) + s) * levels_ + q0 + i)] =
              decoded[static_cast<size_t>(s * sub_ + i)];
    }
  }
  // The row's padding (table_row_ is rounded up to an odd number of cache lines): never read, but copied by
  // snapshot(), so it holds zeros rather than whatever the allocation held.
  std::fill(table_.begin() + r * table_row_ + cols_ / sub_ * levels_, table_.begin() + (r + 1) * table_row_, 0.0f);
}

namespace {
bool single_scale_type(DType t) {
  return t == DType::Q4_0 || t == DType::Q5_0 || t == DType::Q8_0 || t == DType::IQ4_NL;
}
}  // namespace

bool GgufWeightGrid::refit_scales(std::span<const float> weight, const Eigen::MatrixXd& h) {
  if (!single_scale_type(dtype_) || lattice_) return false;
  const size_t row_size = row_bytes(dtype_, cols_), block_bytes = traits(dtype_).block_bytes;
  const int64_t nb = cols_ / block_;
  // Unit levels: the decoder's value of each code with d = 1 (all four types store d as the block's first f16).
  std::vector<float> unit(static_cast<size_t>(levels_));
  {
    std::vector<uint8_t> scratch(block_bytes, 0), level(static_cast<size_t>(block_));
    std::vector<float> decoded(static_cast<size_t>(block_));
    const uint16_t one = f32_to_f16(1.0f);
    for (int64_t q0 = 0; q0 < levels_; q0 += block_) {
      std::memcpy(scratch.data(), &one, 2);
      for (int64_t e = 0; e < block_; ++e) level[static_cast<size_t>(e)] = static_cast<uint8_t>(std::min(levels_ - 1, q0 + e));
      set_codes(dtype_, scratch.data(), level.data());
      dequantize_row(dtype_, scratch.data(), decoded.data(), block_);
      for (int64_t e = 0; e < block_ && q0 + e < levels_; ++e) unit[static_cast<size_t>(q0 + e)] = decoded[static_cast<size_t>(e)];
    }
  }
  parallel_for(static_cast<size_t>(rows_), [&](size_t begin, size_t end) {
    Eigen::VectorXd v(cols_), w(cols_);
    Eigen::MatrixXd a(nb, nb), hq(cols_, nb);
    Eigen::VectorXd rhs(nb), d_old(nb);
    for (size_t rr = begin; rr < end; ++rr) {
      const int64_t r = static_cast<int64_t>(rr);
      uint8_t* row = blocks_.data() + rr * row_size;
      for (int64_t c = 0; c < cols_; ++c) {
        v[c] = unit[codes_[static_cast<size_t>(r * code_row_ + c)]];
        w[c] = weight[static_cast<size_t>(r * cols_ + c)];
      }
      // ŵ = Q d with Q[:, b] = the unit values of block b: A = QᵀHQ, rhs = QᵀHw.
      for (int64_t b = 0; b < nb; ++b) {
        uint16_t bits;
        std::memcpy(&bits, row + static_cast<size_t>(b) * block_bytes, 2);
        d_old[b] = f16_to_f32(bits);
        hq.col(b) = h.middleCols(b * block_, block_) * v.segment(b * block_, block_);
      }
      const Eigen::VectorXd hw = h * w;
      for (int64_t b = 0; b < nb; ++b) {
        rhs[b] = v.segment(b * block_, block_).dot(hw.segment(b * block_, block_));
        for (int64_t c = 0; c < nb; ++c) a(b, c) = v.segment(b * block_, block_).dot(hq.col(c).segment(b * block_, block_));
      }
      for (int64_t b = 0; b < nb; ++b)
        if (!(a(b, b) > 0)) {  // an all-zero block: its scale does not matter, keep it
          a.row(b).setZero(), a.col(b).setZero();
          a(b, b) = 1, rhs[b] = d_old[b];
        }
      const Eigen::VectorXd d_new = a.ldlt().solve(rhs);
      Eigen::VectorXd d_f16(nb);
      for (int64_t b = 0; b < nb; ++b) d_f16[b] = std::isfinite(d_new[b]) ? f16_to_f32(f32_to_f16(static_cast<float>(d_new[b]))) : d_old[b];
      // Output error (w − Qd)ᵀH(w − Qd) = dᵀAd − 2dᵀrhs + const.
      const auto err = [&](const Eigen::VectorXd& d) { return d.dot(a * d) - 2 * d.dot(rhs); };
      if (!(err(d_f16) < err(d_old))) continue;
      for (int64_t b = 0; b < nb; ++b) {
        const uint16_t bits = f32_to_f16(static_cast<float>(d_f16[b]));
        std::memcpy(row + static_cast<size_t>(b) * block_bytes, &bits, 2);
      }
      build_table(r);
    }
  });
  index_levels();
  return true;
}

std::vector<float> GgufWeightGrid::values() const {
  std::vector<float> out(static_cast<size_t>(rows_ * cols_));
  if (lattice_) throw_error(ErrorKind::Internal, "GgufWeightGrid::values: not for the lattice types");
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t c = 0; c < cols_; ++c)
      out[static_cast<size_t>(r * cols_ + c)] =
          table_[static_cast<size_t>(r * table_row_ + c / sub_ * levels_ + codes_[static_cast<size_t>(r * code_row_ + c)])];
  return out;
}

void GgufWeightGrid::restore(Snapshot s) {
  blocks_ = std::move(s.blocks);
  codes_ = std::move(s.codes);
  table_ = std::move(s.table);
  index_levels();
}

void GgufWeightGrid::index_levels() {
  const int64_t subs = cols_ / sub_;
  ascending_.assign(static_cast<size_t>(rows_ * subs), 1);
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t g = 0; g < subs; ++g) {
      const float* levels = table_.data() + r * table_row_ + g * levels_;
      for (int64_t q = 0; q + 1 < levels_; ++q)
        if (!(levels[q] <= levels[q + 1])) ascending_[static_cast<size_t>(r * subs + g)] = 0;
    }
}

GgufWeightGrid::~GgufWeightGrid() = default;

int64_t gguf_grid_joint_columns(DType dtype) { return quant_detail::is_lattice_type(dtype) ? 8 : 1; }

int64_t GgufWeightGrid::joint_columns() const { return lattice_ ? 8 : 1; }

void GgufWeightGrid::quantize_joint(int64_t row, int64_t col0, const double* values, const double* weights,
                                    float* out) {
  if (!lattice_) return WeightGrid::quantize_joint(row, col0, values, weights, out);
  float x[8], w[8];
  for (int j = 0; j < 8; ++j) {
    x[j] = static_cast<float>(values[j]);
    // The search compares float costs: weights are normalised so that the largest is 1 (GPTQ's 1/U_jj² can be
    // far from 1 in either direction).
    w[j] = weights ? static_cast<float>(weights[j]) : 0.0f;
  }
  if (weights) {
    const float top = *std::max_element(w, w + 8);
    for (float& v : w) v = top > 0 ? v / top : 1.0f;
  }
  lattice_->requantize(row, col0, x, weights ? w : nullptr, out);
}

void GgufWeightGrid::fit_group(int64_t, int64_t, std::span<const double>) {
  throw_error(ErrorKind::Internal, "GgufWeightGrid: scales are fixed at construction");
}

namespace {

// The code quantize() picks among `count` levels: the nearest, the lowest code among equally near ones. Ascending
// tables and finite values take a bisection; the rest (and NaN values, which pick code 0) the plain scan.
inline int64_t nearest_level(const float* levels, int64_t count, bool ascending, double value) {
  int64_t best = 0;
  if (ascending && std::isfinite(value)) {
    // lo = the first level ≥ value; the other candidate is the first code holding the level just below it.
    int64_t lo = 0;  // branch-free lower bound: the comparisons become conditional moves
    for (int64_t n = count; n > 1;) {
      const int64_t half = n / 2;
      lo = static_cast<double>(levels[lo + half - 1]) < value ? lo + half : lo;
      n -= half;
    }
    lo += static_cast<double>(levels[lo]) < value;
    const auto first_of = [&](int64_t q) {
      while (q > 0 && levels[q - 1] == levels[q]) --q;
      return q;
    };
    if (lo == 0) best = 0;
    else if (lo == count) best = first_of(count - 1);
    else {
      const double below = value - static_cast<double>(levels[lo - 1]), above = static_cast<double>(levels[lo]) - value;
      best = above < below ? lo : first_of(lo - 1);
    }
  } else {
    double best_distance = std::numeric_limits<double>::infinity();
    for (int64_t q = 0; q < count; ++q) {
      const double d = std::abs(static_cast<double>(levels[q]) - value);
      if (d < best_distance) best_distance = d, best = q;
    }
  }
  return best;
}

// Levels below `value` in `levels[0, N)`: for a non-decreasing table the lower bound the bisection finds (the
// levels below form a prefix), as a branch-free vectorised count.
using Floats8 = float __attribute__((vector_size(32)));
using Ints8 = int32_t __attribute__((vector_size(32)));

template <int64_t N>
inline int64_t count_below(const float* levels, float value) {
  if constexpr (N < 8) {
    int64_t lo = 0;
    for (int64_t q = 0; q < N; ++q) lo += levels[q] < value;
    return lo;
  } else {
    Ints8 below = {};  // lanes of −1 per level below
    for (int64_t q = 0; q < N; q += 8) {
      Floats8 l;
      std::memcpy(&l, levels + q, sizeof l);
      below += l < value;
    }
    return -(below[0] + below[1] + below[2] + below[3] + below[4] + below[5] + below[6] + below[7]);
  }
}

// nearest_level for a float value, the common case (ascending table of at most 64 levels, finite value) without
// the bisection's dependent loads and without a branch on the nearer side: the same code, as the lower bound is
// the same and the final choice is the same double comparison.
inline int64_t nearest_level_f(const float* levels, int64_t count, bool ascending, float value) {
  if (!ascending || !std::isfinite(value)) return nearest_level(levels, count, ascending, value);
  int64_t lo;
  switch (count) {
    case 4: lo = count_below<4>(levels, value); break;
    case 8: lo = count_below<8>(levels, value); break;
    case 16: lo = count_below<16>(levels, value); break;
    case 32: lo = count_below<32>(levels, value); break;
    case 64: lo = count_below<64>(levels, value); break;
    default: return nearest_level(levels, count, ascending, value);
  }
  const auto first_of = [&](int64_t q) {
    while (q > 0 && levels[q - 1] == levels[q]) --q;
    return q;
  };
  if (lo == 0) return 0;
  if (lo == count) return first_of(count - 1);
  const double v = value, below = v - static_cast<double>(levels[lo - 1]), above = static_cast<double>(levels[lo]) - v;
  const int64_t down = first_of(lo - 1);
  // The nearer side is a coin toss per element: an arithmetic select instead of a mispredicted branch.
  const int64_t up = -static_cast<int64_t>(above < below);
  return (lo & up) | (down & ~up);
}

// quantize_column's loop: row r's group table at table + r·table_stride, its ascending flag at
// ascending[r·ascending_stride], its code at codes[r·code_stride].
void nearest_codes_body(const float* table, int64_t table_stride, const char* ascending, int64_t ascending_stride,
                        int64_t count, int64_t n, const float* values, uint8_t* codes, int64_t code_stride, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    const float* levels = table + r * table_stride;
    const int64_t best = nearest_level_f(levels, count, ascending[r * ascending_stride] != 0, values[r]);
    codes[r * code_stride] = static_cast<uint8_t>(best);
    out[r] = levels[best];
  }
}

SLMOPT_QUANT_DISPATCH(void, nearest_codes,
                      (const float* table, int64_t table_stride, const char* ascending, int64_t ascending_stride,
                       int64_t count, int64_t n, const float* values, uint8_t* codes, int64_t code_stride, float* out),
                      (table, table_stride, ascending, ascending_stride, count, n, values, codes, code_stride, out))

}  // namespace

float GgufWeightGrid::quantize(int64_t row, int64_t col, double value) {
  if (lattice_) throw_error(ErrorKind::Internal, "GgufWeightGrid: {} rounds 8 values jointly", dtype_name(dtype_));
  const size_t group = static_cast<size_t>(row * (cols_ / sub_) + col / sub_);
  const float* levels = table_.data() + row * table_row_ + col / sub_ * levels_;
  const int64_t best = nearest_level(levels, levels_, ascending_[group] != 0, value);
  codes_[static_cast<size_t>(row * code_row_ + col)] = static_cast<uint8_t>(best);
  return levels[best];
}

void GgufWeightGrid::quantize_column(int64_t row0, int64_t n, int64_t col, const float* values, float* out) {
  if (lattice_) throw_error(ErrorKind::Internal, "GgufWeightGrid: {} rounds 8 values jointly", dtype_name(dtype_));
  const int64_t groups_per_row = cols_ / sub_;
  const size_t group0 = static_cast<size_t>(row0 * groups_per_row + col / sub_);
  nearest_codes(table_.data() + row0 * table_row_ + col / sub_ * levels_, table_row_, ascending_.data() + group0,
                groups_per_row, levels_, n, values, codes_.data() + row0 * code_row_ + col, code_row_, out);
}

Tensor GgufWeightGrid::pack(const std::string& name) const {
  if (lattice_) {
    std::vector<uint8_t> bytes(static_cast<size_t>(rows_) * row_bytes(dtype_, cols_));
    lattice_->pack(bytes.data());
    return Tensor::owned(name, {rows_, cols_}, dtype_, std::move(bytes));
  }
  std::vector<uint8_t> bytes = blocks_;
  const size_t block_bytes = traits(dtype_).block_bytes;
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t b = 0; b < cols_ / block_; ++b)
      set_codes(dtype_, bytes.data() + static_cast<size_t>(r) * row_bytes(dtype_, cols_) + static_cast<size_t>(b) * block_bytes,
                codes_.data() + static_cast<size_t>(r * code_row_ + b * block_));
  return Tensor::owned(name, {rows_, cols_}, dtype_, std::move(bytes));
}

}  // namespace slmopt
