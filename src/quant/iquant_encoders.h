// slmopt's encoders of the i-quant super-block types (private to src/quant; the algorithm is described at the
// top of iquant_encoders.cpp). They minimise Σ importance·(x − x̂)² (plain squared error without importance)
// directly; llama.cpp's own i-quant encoders are not replicated, so Encoder::Reference / Encoder::Llama are
// unavailable for these types.
#pragma once

#include <cstdint>

#include "slmopt/ir/dtype.h"

namespace slmopt::quant_detail {

// IQ4_XS, IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS, IQ2_XXS, IQ1_M, IQ1_S; n a multiple of 256.
void encode_iquant(DType dtype, const float* x, uint8_t* dst, int64_t n, const float* importance);

// The types llama.cpp refuses to write without an importance matrix (llama-quant.cpp's tensor_requires_imatrix;
// it exempts token_embd and output).
bool iquant_needs_importance(DType dtype);

}  // namespace slmopt::quant_detail
