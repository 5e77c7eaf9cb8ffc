// GPTQ's factorisation in F32 at matrix-product speed: U, upper triangular with H⁻¹ = UᵀU, without forming H⁻¹.
//
// With P the reversal permutation, R = P·H·P = L·Lᵀ (lower Cholesky) gives H⁻¹ = P·L⁻ᵀ·L⁻¹·P = UᵀU for
// U = P·L⁻¹·P, which is upper triangular. So one Cholesky (n³/3 flops) and one triangular inverse (n³/3) replace
// the published recipe's Cholesky, inverse and second Cholesky (5n³/3), and both run blocked: 128 × 128 diagonal
// blocks in double, everything else as exec/gemm.h products (panel solves through the inverted diagonal block,
// the trailing symmetric update, the row blocks of L⁻¹). Byte-identical for any thread count (gemm.h's order).
#pragma once

#include <cstdint>
#include <vector>

#include "slmopt/core/huge_pages.h"

namespace slmopt {

// h: [n, n] row-major, symmetric (already damped); consumed (its storage becomes working space). Returns U in
// `u`, or false, leaving u unspecified, when h is not positive definite in F32 (a pivot ≤ 0 or not finite).
bool inverse_cholesky_upper_f32(HugeVector<float>&& h, int64_t n, HugeVector<float>& u);

// The two steps, exposed for the tests. a: row-major; only the lower triangle is read and written.
// The Cholesky inverts its diagonal blocks (in double) for the panel solves; invert_lower_f32 needs the same
// inverses and reuses them when given (entry b: block b, row-major; empty: not kept).
using DiagonalInverses = std::vector<std::vector<double>>;
bool cholesky_lower_f32(HugeVector<float>& a, int64_t n, DiagonalInverses* inverses = nullptr);
HugeVector<float> invert_lower_f32(const HugeVector<float>& l, int64_t n, const DiagonalInverses* inverses = nullptr);

// Floating-point operations of inverse_cholesky_upper_f32 on an n × n matrix (2 per multiply-add).
double inverse_cholesky_flops(int64_t n);

}  // namespace slmopt
