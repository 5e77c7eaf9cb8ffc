// GGUF block types as a grid for GPTQ (and RTN/AWQ): the block scales are fitted once from the original
// weights by the block encoder (quant/block_quantize.h, its scale search weighted by an importance vector such
// as diag(H)); then every element may take only the values its block can represent with those scales, and the
// rounding algorithm picks the integer. The result packs into stock GGUF blocks, so llama.cpp decodes exactly the
// weights the algorithm chose.
//
// How the representable values are found: for each block and each code q, the block is packed with every element
// at q and decoded with ir/block_formats' dequantize_row; the value of each sub-block's first element is that
// sub-block's level q. The levels are therefore bit-identical to what the decoder produces, whatever arithmetic
// the type's decoder uses (f16 scales, 6-bit sub-scales, biased codes, the IQ4_NL table).
//
// Types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL (32-element blocks) and Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS
// (256-element super-blocks with 16- or 32-element sub-blocks). Memory: one float per level per sub-block (Q8_0: 8
// floats per weight, Q6_K 4, Q4_K 0.5), for the one linear being quantized.
//
// The lattice i-quants (IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS, IQ2_XXS, IQ1_M, IQ1_S) choose 8 values jointly from a
// codebook: the grid's joint_columns() is 8 and quantize_joint picks the point (signs included) nearest to the
// 8 current values under the caller's per-column weights, at the block scales the encoder chose from the original
// weights (quant/iquant_encoders.h LatticeBlocks). Memory: about 2 bytes per weight.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "slmopt/core/huge_pages.h"
#include "slmopt/ir/dtype.h"
#include "slmopt/ir/tensor.h"
#include "slmopt/quant/weight_grid.h"

namespace slmopt {

namespace quant_detail {
class LatticeBlocks;
}

bool gguf_grid_supported(DType dtype);
// The grid's joint_columns() for dtype: 8 for the lattice i-quants, 1 otherwise.
int64_t gguf_grid_joint_columns(DType dtype);

class GgufWeightGrid final : public WeightGrid {
 public:
  // weight [rows, cols] row-major; cols must be a whole number of the type's blocks (Error(Usage) naming `what`
  // otherwise). importance: null or cols non-negative weights for the encoder's scale search.
  GgufWeightGrid(std::span<const float> weight, int64_t rows, int64_t cols, DType dtype, const float* importance,
                 const std::string& what);
  ~GgufWeightGrid() override;

  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  int64_t group_columns() const override { return sub_; }
  bool fixed() const override { return true; }
  void fit_group(int64_t row, int64_t group, std::span<const double> values) override;
  float quantize(int64_t row, int64_t col, double value) override;
  void quantize_column(int64_t row0, int64_t n, int64_t col, const float* values, float* out) override;
  int64_t joint_columns() const override;
  void quantize_joint(int64_t row, int64_t col0, const double* values, const double* weights, float* out) override;

  // Re-fitting the block scales after GPTQ (the single-scale 32-element types Q4_0, Q5_0, Q8_0, IQ4_NL): with
  // the chosen codes fixed, every row's block scales d solve the least-squares problem of the layer output,
  // min over d of (w − ŵ(d))ᵀ H (w − ŵ(d)) (one small dense system per row, blocks coupled through H), rounded
  // to f16; a row keeps its old scales unless the new ones lower that error. Returns false (and changes nothing)
  // for other types. A later GPTQ sweep on this grid rounds onto the new scales (alternating).
  bool refit_scales(std::span<const float> weight, const Eigen::MatrixXd& h);
  // The grid values of the recorded codes (quantize/quantize_joint results, under the current scales).
  std::vector<float> values() const;
  // The scales and codes, to return to an earlier state (refit_scales types only).
  struct Snapshot {
    std::vector<uint8_t> blocks, codes;
    HugeVector<float> table;
  };
  Snapshot snapshot() const { return {blocks_, codes_, table_}; }
  void restore(Snapshot s);

  DType dtype() const { return dtype_; }
  // The blocks with the chosen codes: a [rows, cols] tensor of dtype().
  Tensor pack(const std::string& name) const;

 private:
  void index_levels();
  void build_table(int64_t row);  // table_ of one row, decoded from blocks_ with every code in turn
  DType dtype_;
  int64_t rows_, cols_, block_, sub_, levels_;
  std::vector<uint8_t> blocks_;  // the encoder's blocks (scales), codes replaced at pack()
  // [rows, cols / sub_, levels_], rows table_row_ floats apart. Not zero-filled at allocation (for a Q6_K grid it
  // is 16 bytes a weight, and AWQ builds one per scale candidate): build_table writes every entry, padding too.
  HugeVector<float> table_;
  std::vector<char> ascending_;  // [rows, cols / sub_]: levels non-decreasing (quantize binary-searches them)
  std::vector<uint8_t> codes_;   // [rows, cols], rows code_row_ bytes apart
  int64_t table_row_ = 0, code_row_ = 0;  // an odd number of cache lines each (see the constructor)
  std::unique_ptr<quant_detail::LatticeBlocks> lattice_;  // the lattice types' blocks (table_/codes_ unused)
};

}  // namespace slmopt
