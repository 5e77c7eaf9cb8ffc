// Encoders that reproduce llama.cpp's quantizers byte for byte (private to the quant layer).
//
// Two entry points per type:
//   ggml_reference_<type>  = ggml's quantize_row_<type>_ref: deterministic, no importance. This is what makes
//                            a GGUF file "format compatible" and what the unit test compares byte for byte.
//   ggml_chunk_<type>      = what ggml_quantize_chunk writes for one row: the _ref encoder when there is no
//                            importance vector (IQ4_NL always searches), otherwise the importance-weighted
//                            quantize_row_<type>_impl. slmopt's own search keeps this result as one of its
//                            candidates, which is how it can promise never to be worse than llama.cpp.
// All functions take a row of n elements (a whole number of blocks) and write row_bytes(type, n) bytes.
// The helpers below mirror ggml's scale searches (make_qx_quants and friends) operation for operation: the float
// expressions are written in ggml's evaluation order on purpose, since reordering them changes the bytes.
#pragma once

#include <cstdint>

namespace slmopt::quant_detail {

void ggml_reference_q4_0(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q4_1(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q5_0(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q5_1(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q8_0(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_iq4_nl(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q2_k(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q3_k(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q4_k(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q5_k(const float* x, uint8_t* dst, int64_t n);
void ggml_reference_q6_k(const float* x, uint8_t* dst, int64_t n);

void ggml_chunk_q4_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q4_1(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q5_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q5_1(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q8_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_iq4_nl(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q2_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q3_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q4_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q5_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void ggml_chunk_q6_k(const float* x, uint8_t* dst, int64_t n, const float* importance);

// ---- ggml's scale searches, shared by the legacy and K-quant replicas ----

// make_qx_quants with rmse_type 1: symmetric levels -nmax..nmax-1 (stored biased by nmax in L), weights qw or x².
float ggml_make_qx(int n, int nmax, const float* x, int8_t* L, const float* qw);
// make_q3_quants with do_rmse: like make_qx with x² weights plus a coordinate-descent pass; L biased by nmax.
float ggml_make_q3(int n, int nmax, const float* x, int8_t* L);
// make_qkx2_quants / make_qkx3_quants: levels 0..nmax with a non-positive offset; returns the scale and stores
// -offset in *the_min. make_qkx3 accepts null weights (x²) and differs from make_qkx2 in its degenerate test.
float ggml_make_qkx2(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                     uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
float ggml_make_qkx3(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                     uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
// make_qp_quants: non-negative levels 0..nmax for a vector of positive sub-block scales, weighted.
float ggml_make_qp(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

}  // namespace slmopt::quant_detail
