// The dtype → row decoder table shared by the SIMD kernel sets (internal to exec). Not a normal header: a set's
// .cpp includes it inside its own anonymous namespace, after defining its decoders under these names
// (decode_f16, decode_q4_0, ...), so the names resolve to that set's functions and every set covers the same
// types by construction.
#pragma once

RowDecoder row_decoder(DType dtype) {
  switch (dtype) {
    case DType::F16: return {decode_f16, 1};
    case DType::BF16: return {decode_bf16, 1};
    case DType::Q8_0: return {decode_q8_0, kQK};
    case DType::Q4_0: return {decode_q4_0, kQK};
    case DType::Q4_1: return {decode_q4_1, kQK};
    case DType::Q5_0: return {decode_q5<false>, kQK};
    case DType::Q5_1: return {decode_q5<true>, kQK};
    case DType::IQ4_NL: return {decode_iq4_nl, kQK};
    case DType::Q2_K: return {decode_q2_k, kQKK};
    case DType::Q3_K: return {decode_q3_k, kQKK};
    case DType::Q4_K: return {decode_q4_k, kQKK};
    case DType::Q5_K: return {decode_q5_k, kQKK};
    case DType::Q6_K: return {decode_q6_k, kQKK};
    case DType::IQ4_XS: return {decode_iq4_xs, kQKK};
    case DType::IQ3_S: return {decode_iq3_s, kQKK};
    case DType::IQ3_XXS: return {decode_iq3_xxs, kQKK};
    case DType::IQ2_S: return {decode_iq2_s, kQKK};
    case DType::IQ2_XS: return {decode_iq2_xs, kQKK};
    case DType::IQ2_XXS: return {decode_iq2_xxs, kQKK};
    case DType::IQ1_M: return {decode_iq1_m, kQKK};
    case DType::IQ1_S: return {decode_iq1_s, kQKK};
    default: return {};
  }
}

bool decode_rows(DType dtype, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t K, float* dst) {
  return decode_rows_with(row_decoder(dtype), src, row_bytes, rows, K, dst);
}
