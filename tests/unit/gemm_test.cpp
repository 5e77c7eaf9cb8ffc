// exec/gemm.h: every kernel set this CPU supports (forced in turn, as SLMOPT_KERNEL would) reproduces the
// portable fma chain bit for bit (odd shapes, strided A, column and row tails, k longer than one cache block),
// the parallel driver gives the same bits for any thread count, and the result agrees with a double-precision
// product. quant/inverse_cholesky.h: UᵀU = H⁻¹ against Eigen in
// double, byte-identical for any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include <Eigen/Cholesky>

#include "slmopt/core/parallel.h"
#include "slmopt/exec/cpu_features.h"
#include "slmopt/exec/gemm.h"
#include "slmopt/quant/inverse_cholesky.h"

namespace slmopt {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// The kernel sets to force: every SIMD set this CPU runs (the portable one is the reference itself).
std::vector<KernelIsa> simd_sets() {
  std::vector<KernelIsa> sets;
  for (const KernelIsa isa : {KernelIsa::Avx2, KernelIsa::Avx512})
    if (kernel_isa_supported(isa)) sets.push_back(isa);
  return sets;
}

// Restores detection after a test forced a set.
struct ForcedIsa {
  explicit ForcedIsa(KernelIsa isa) { set_kernel_isa(isa); }
  ~ForcedIsa() { set_kernel_isa(std::nullopt); }
};

TEST(Gemm, EverySimdKernelMatchesPortableBitForBit) {
  if (simd_sets().empty()) GTEST_SKIP() << "no SIMD kernel set on this CPU";
  for (const KernelIsa isa : simd_sets()) {
    const ForcedIsa forced(isa);
    EXPECT_EQ(gemm_kernel_name(), kernel_isa_name(isa));
    struct Shape {
      int64_t m, n, k;
    };
    for (const Shape s : {Shape{13, 45, 300}, Shape{8, 32, 256}, Shape{64, 300, 600}, Shape{1, 1, 1}, Shape{7, 17, 3}}) {
      // A read transposed (a_row = 1, a_col = m) as XᵀX does.
      const std::vector<float> a = random_vector(static_cast<size_t>(s.m * s.k), 1), b = random_vector(static_cast<size_t>(s.k * s.n), 2);
      const std::vector<float> c0 = random_vector(static_cast<size_t>(s.m * s.n), 3);
      std::vector<float> fast = c0, portable = c0, parallel = c0;
      const GemmArgs g{s.m, s.n, s.k, a.data(), 1, s.m, b.data(), s.n, nullptr, s.n};
      GemmArgs gf = g, gp = g, gq = g;
      gf.c = fast.data(), gp.c = portable.data(), gq.c = parallel.data();
      gemm_accumulate(gf);
      gemm_accumulate(gp, true);
      gemm_accumulate_parallel(gq);
      EXPECT_EQ(fast, portable) << s.m << "x" << s.n << "x" << s.k << " kernel " << gemm_kernel_name();
      EXPECT_EQ(parallel, portable);
      // Against double: each element's error stays within a few ulps of the sum of |products|.
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
          double want = c0[static_cast<size_t>(i * s.n + j)], mag = std::abs(want);
          for (int64_t k = 0; k < s.k; ++k) {
            const double p = static_cast<double>(a[static_cast<size_t>(k * s.m + i)]) * b[static_cast<size_t>(k * s.n + j)];
            want += p, mag += std::abs(p);
          }
          EXPECT_NEAR(fast[static_cast<size_t>(i * s.n + j)], want, 1e-6 * mag * std::sqrt(double(s.k)) + 1e-30);
        }
    }
  }
}

TEST(Gemm, ParallelByteIdenticalForAnyThreadCountAndTriangle) {
  const int64_t n = 333, k = 517;
  const std::vector<float> x = random_vector(static_cast<size_t>(k * n), 4);
  std::vector<KernelIsa> sets = simd_sets();
  sets.push_back(KernelIsa::Portable);
  for (const KernelIsa isa : sets) {
    SCOPED_TRACE(kernel_isa_name(isa));
    const ForcedIsa forced(isa);
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3}) {
      set_thread_count(threads);
      std::vector<float> c(static_cast<size_t>(n * n), 0.0f);
      gemm_accumulate_parallel({n, n, k, x.data(), 1, n, x.data(), n, c.data(), n}, GemmTriangle::UpperOnly);
      results.push_back(c);
    }
    set_thread_count(0);
    EXPECT_EQ(results[0], results[1]);
    EXPECT_EQ(results[0], results[2]);
    std::vector<float> full(static_cast<size_t>(n * n), 0.0f);
    gemm_accumulate({n, n, k, x.data(), 1, n, x.data(), n, full.data(), n}, true);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i; j < n; ++j) ASSERT_EQ(results[0][static_cast<size_t>(i * n + j)], full[static_cast<size_t>(i * n + j)]);
  }
}

// A symmetric positive definite matrix with uneven scales, as GPTQ Hessians are.
Eigen::MatrixXd spd(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd x(2 * n, n);
  for (int64_t i = 0; i < x.rows(); ++i)
    for (int64_t j = 0; j < n; ++j) x(i, j) = normal(rng) * (1.0 + 3.0 * (j % 7 == 0));
  Eigen::MatrixXd h = x.transpose() * x / double(x.rows());
  h.diagonal().array() += 0.01 * h.diagonal().mean();
  return h;
}

// h rounded to F32, row-major: the input the F32 factorisation takes.
HugeVector<float> f32_rows(const Eigen::MatrixXd& h) {
  const int64_t n = h.rows();
  HugeVector<float> out(static_cast<size_t>(n * h.cols()));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < h.cols(); ++j) out[static_cast<size_t>(i * h.cols() + j)] = static_cast<float>(h(i, j));
  return out;
}

TEST(InverseCholesky, UpperFactorOfTheInverseMatchesDoublePrecision) {
  const int64_t n = 300;  // three diagonal blocks, a partial last one
  const Eigen::MatrixXd h = spd(n, 5);
  HugeVector<float> hf = f32_rows(h);
  std::vector<HugeVector<float>> us;
  for (int threads : {1, 2, 3}) {
    set_thread_count(threads);
    HugeVector<float> u, copy = hf;
    ASSERT_TRUE(inverse_cholesky_upper_f32(std::move(copy), n, u));
    us.push_back(u);
  }
  set_thread_count(0);
  EXPECT_EQ(us[0], us[1]);
  EXPECT_EQ(us[0], us[2]);
  Eigen::MatrixXd inv = h.llt().solve(Eigen::MatrixXd::Identity(n, n));
  inv = (inv + inv.transpose()) * 0.5;
  const Eigen::MatrixXd want = inv.llt().matrixU();
  double max_rel = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double got = us[0][static_cast<size_t>(i * n + j)];
      if (j < i) {
        ASSERT_EQ(got, 0.0) << i << "," << j;
      }
      max_rel = std::max(max_rel, std::abs(got - want(i, j)) / std::abs(want(i, i)));
    }
  EXPECT_LT(max_rel, 2e-4);
}

// The diagonal blocks are factored and inverted in double by vectorised loops that keep every entry's
// operations of the textbook loops below (the same terms, in the same order): bit-identical floats. One
// 128 × 128 block is exactly one diagonal block (no panel products).
TEST(InverseCholesky, DiagonalBlocksMatchTheTextbookLoopsBitForBit) {
  const int64_t n = 128;
  const Eigen::MatrixXd h = spd(n, 9);
  HugeVector<float> a = f32_rows(h);
  std::vector<double> d(static_cast<size_t>(n * n), 0.0);  // textbook Cholesky, row by row
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) d[static_cast<size_t>(i * n + j)] = a[static_cast<size_t>(i * n + j)];
  for (int64_t j = 0; j < n; ++j) {
    double s = d[static_cast<size_t>(j * n + j)];
    for (int64_t m = 0; m < j; ++m) s -= d[static_cast<size_t>(j * n + m)] * d[static_cast<size_t>(j * n + m)];
    const double djj = std::sqrt(s);
    d[static_cast<size_t>(j * n + j)] = djj;
    for (int64_t i = j + 1; i < n; ++i) {
      double t = d[static_cast<size_t>(i * n + j)];
      for (int64_t m = 0; m < j; ++m) t -= d[static_cast<size_t>(i * n + m)] * d[static_cast<size_t>(j * n + m)];
      d[static_cast<size_t>(i * n + j)] = t / djj;
    }
  }
  ASSERT_TRUE(cholesky_lower_f32(a, n));
  HugeVector<float> l(static_cast<size_t>(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      ASSERT_EQ(a[static_cast<size_t>(i * n + j)], static_cast<float>(d[static_cast<size_t>(i * n + j)])) << i << "," << j;
      l[static_cast<size_t>(i * n + j)] = a[static_cast<size_t>(i * n + j)];
    }
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);  // textbook inverse, column by column
  for (int64_t j = 0; j < n; ++j) {
    inv[static_cast<size_t>(j * n + j)] = 1.0 / static_cast<double>(l[static_cast<size_t>(j * n + j)]);
    for (int64_t i = j + 1; i < n; ++i) {
      double s = 0;
      for (int64_t m = j; m < i; ++m) s += static_cast<double>(l[static_cast<size_t>(i * n + m)]) * inv[static_cast<size_t>(m * n + j)];
      inv[static_cast<size_t>(i * n + j)] = -s / static_cast<double>(l[static_cast<size_t>(i * n + i)]);
    }
  }
  const HugeVector<float> m = invert_lower_f32(l, n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) ASSERT_EQ(m[static_cast<size_t>(i * n + j)], static_cast<float>(inv[static_cast<size_t>(i * n + j)])) << i << "," << j;
}

// invert_lower_f32 reusing the Cholesky's inverses of the diagonal blocks gives the bits it computes without them.
TEST(InverseCholesky, ReusedDiagonalInversesGiveTheSameInverse) {
  const int64_t n = 300;
  const Eigen::MatrixXd h = spd(n, 11);
  HugeVector<float> a = f32_rows(h);
  DiagonalInverses inverses;
  ASSERT_TRUE(cholesky_lower_f32(a, n, &inverses));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) a[static_cast<size_t>(i * n + j)] = 0.0f;
  EXPECT_EQ(invert_lower_f32(a, n, &inverses), invert_lower_f32(a, n));
}

TEST(InverseCholesky, ReportsMatricesThatAreNotPositiveDefinite) {
  const int64_t n = 140;
  HugeVector<float> h(static_cast<size_t>(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i) h[static_cast<size_t>(i * n + i)] = i == 131 ? -1.0f : 1.0f;
  HugeVector<float> u;
  EXPECT_FALSE(inverse_cholesky_upper_f32(std::move(h), n, u));
}

}  // namespace
}  // namespace slmopt
