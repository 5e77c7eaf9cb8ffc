// slmopt's encoders of the i-quant super-block types (private to src/quant; the algorithm is described at the
// top of iquant_encoders.cpp). They minimise Σ importance·(x − x̂)² (plain squared error without importance)
// directly; llama.cpp's own i-quant encoders are not replicated, so Encoder::Reference / Encoder::Llama are
// unavailable for these types.
#pragma once

#include <cstdint>
#include <memory>

#include "slmopt/ir/dtype.h"

namespace slmopt::quant_detail {

// IQ4_XS, IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS, IQ2_XXS, IQ1_M, IQ1_S; n a multiple of 256.
void encode_iquant(DType dtype, const float* x, uint8_t* dst, int64_t n, const float* importance);

// The types llama.cpp refuses to write without an importance matrix (llama-quant.cpp's tensor_requires_imatrix;
// it exempts token_embd and output).
bool iquant_needs_importance(DType dtype);

// The lattice types as a GPTQ grid (quant/gguf_grid.h): a [rows, cols] matrix encoded as above (scales chosen
// from the original weights and the importance), whose 8-value groups can then be re-chosen one at a time at the
// block's fixed scales (and, for IQ1_S, the fixed δ sign of the 32 values around it).
bool is_lattice_type(DType dtype);
class LatticeBlocks {
 public:
  LatticeBlocks(DType dtype, const float* weight, int64_t rows, int64_t cols, const float* importance);
  ~LatticeBlocks();
  LatticeBlocks(const LatticeBlocks&) = delete;
  LatticeBlocks& operator=(const LatticeBlocks&) = delete;
  // The best point (signs included) for the 8 values x of (row, col0 .. col0 + 7) under Σ w (x − x̂)²; w null
  // keeps the encoder's point. Writes x̂ to out, computed as the decoder computes it (bit-identical).
  void requantize(int64_t row, int64_t col0, const float* x, const float* w, float* out);
  // The blocks, row after row, with the chosen points.
  void pack(uint8_t* dst) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slmopt::quant_detail
