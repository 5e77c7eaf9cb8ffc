// slmopt's default encoders (private to src/quant): for every block they build llama.cpp's own encoding (the
// ggml_chunk_* replica, with or without importance) and slmopt's wider search (scale_fit.h), decode both and
// keep the one with the smaller weighted squared error, so the result is never worse than llama.cpp's on any
// block. The error is Σ importance·(x − x̂)², or the plain squared error without an importance vector: llama.cpp's
// own weighting heuristics still shape its candidate, but the choice is made on the error itself.
#pragma once

#include <cstdint>

#include "slmopt/ir/dtype.h"

namespace slmopt::quant_detail {

void search_q4_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q4_1(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q5_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q5_1(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q8_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_iq4_nl(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q2_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q3_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q4_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q5_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void search_q6_k(const float* x, uint8_t* dst, int64_t n, const float* importance);

// Encoder::Fast: llama.cpp's own block (the exact replica of ggml_compatible.h), then a cheap polish per block
// (least-squares rescaling of its integers, re-rounding, re-picked K sub-scales), kept only where it decodes to
// a strictly smaller weighted error: never worse than llama.cpp, at about llama.cpp's cost.
void fast_q4_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q4_1(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q5_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q5_1(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q8_0(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_iq4_nl(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q2_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q3_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q4_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q5_k(const float* x, uint8_t* dst, int64_t n, const float* importance);
void fast_q6_k(const float* x, uint8_t* dst, int64_t n, const float* importance);

// Replaces the block at `current` (length block_bytes, holding block_elems elements of x) by `candidate` when
// the candidate decodes to a strictly smaller weighted error. w may be null (plain squared error).
void keep_better_block(DType dtype, const float* x, const float* w, int block_elems, uint8_t* current,
                       const uint8_t* candidate, size_t block_bytes);

}  // namespace slmopt::quant_detail
