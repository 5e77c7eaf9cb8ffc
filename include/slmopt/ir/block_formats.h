// Decoding of GGUF block-quantized rows to float, bit-compatible with ggml's dequantize_row_* functions.
// The block structs (with their byte layouts and size checks) live in block_structs.h; encoders and the
// scale searches that choose the blocks live in quant/, which builds on these definitions.
#pragma once

#include <cstdint>

#include "slmopt/ir/dtype.h"

namespace slmopt {

// Decodes n elements (a whole number of blocks) of `dtype` from src into dst. Plain float types work too.
void dequantize_row(DType dtype, const uint8_t* src, float* dst, int64_t n);

}  // namespace slmopt
