// Decoders of the i-quant super-block types (private to ir/; dequantize_row dispatches to them). Each decodes
// nb whole 256-element blocks from src into y, bit-identical to ggml's dequantize_row_<type>.
#pragma once

#include <cstdint>

namespace slmopt::iquant_detail {

void decode_iq4_xs(const uint8_t* src, float* y, int64_t nb);
void decode_iq3_s(const uint8_t* src, float* y, int64_t nb);
void decode_iq3_xxs(const uint8_t* src, float* y, int64_t nb);
void decode_iq2_s(const uint8_t* src, float* y, int64_t nb);
void decode_iq2_xs(const uint8_t* src, float* y, int64_t nb);
void decode_iq2_xxs(const uint8_t* src, float* y, int64_t nb);
void decode_iq1_m(const uint8_t* src, float* y, int64_t nb);
void decode_iq1_s(const uint8_t* src, float* y, int64_t nb);

}  // namespace slmopt::iquant_detail
