// linear_stored and gather_rows on every stored type: against a double-precision product of the reference
// decoder's floats (with a rigorous float rounding bound as tolerance), and bit for bit across kernel sets,
// thread counts and token counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

#include "quant_test_data.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/cpu_features.h"
#include "slmopt/exec/kernels.h"
#include "slmopt/exec/stored_linear.h"
#include "slmopt/quant/block_quantize.h"

namespace slmopt {
namespace {

// Restores the kernel set and thread count a test changes.
struct KernelGuard {
  ~KernelGuard() {
    set_kernel_isa(std::nullopt);
    set_thread_count(0);
  }
};

constexpr DType kIquants[] = {DType::IQ4_XS, DType::IQ3_S,   DType::IQ3_XXS, DType::IQ2_S,
                               DType::IQ2_XS, DType::IQ2_XXS, DType::IQ1_M,   DType::IQ1_S};

bool is_iquant(DType dtype) { return std::find(std::begin(kIquants), std::end(kIquants), dtype) != std::end(kIquants); }

std::vector<DType> stored_types() {
  std::vector<DType> types = {DType::F32, DType::F16, DType::BF16};
  for (const DType t : testing::all_block_types()) types.push_back(t);
  types.insert(types.end(), std::begin(kIquants), std::end(kIquants));
  return types;
}

std::vector<KernelIsa> supported_sets() {
  std::vector<KernelIsa> sets;
  for (const auto isa : {KernelIsa::Portable, KernelIsa::Avx2, KernelIsa::Avx512})
    if (kernel_isa_supported(isa)) sets.push_back(isa);
  return sets;
}

RowMatrix random_matrix(int64_t rows, int64_t cols, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  RowMatrix m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

// A weight [out, in] stored as `dtype` (block types through llama.cpp's reference encoder; the i-quants, which
// have none, through slmopt's own).
Tensor stored_weight(DType dtype, int64_t out, int64_t in, uint32_t seed) {
  const RowMatrix w = random_matrix(out, in, seed, 0.05f);
  const std::span<const float> values(w.data(), static_cast<size_t>(w.size()));
  if (dtype == DType::F32) return Tensor::from_f32("w", {out, in}, values);
  if (dtype == DType::F16 || dtype == DType::BF16) return Tensor::from_f32_as("w", {out, in}, values, dtype);
  return quantize_tensor(Tensor::from_f32("w", {out, in}, values), dtype, nullptr,
                         is_iquant(dtype) ? Encoder::Fast : Encoder::Reference);
}

int64_t block_cols(DType dtype) { return traits(dtype).block_size == 1 ? 200 : 512; }

bool same_bits(const RowMatrix& a, const RowMatrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.size()) * sizeof(float)) == 0;
}

// Every output against Σ x·w in double over the reference decoder's floats. The kernels' longest chain of
// roundings for one output is ⌈min(K, 1024)/16⌉ fused multiply-adds in a lane, 4 tree additions, one addition
// per further 1024-wide chunk and the bias: n of them keep the result within γ_n·(Σ|x·w| + |bias|),
// γ_n ≈ n·2⁻²⁴ (Higham's bound; the float inputs are exact).
void expect_close_to_reference(const RowMatrix& x, const Tensor& weight, const float* bias, const RowMatrix& y) {
  const std::vector<float> w = weight.to_f32();
  const int64_t out = weight.dim(0), in = weight.dim(1);
  const int64_t chain = (std::min<int64_t>(in, 1024) + 15) / 16 + 4 + (in + 1023) / 1024 + 1;
  const double unit = std::ldexp(1.0, -24) * static_cast<double>(chain) * 1.01;
  int failures = 0;
  for (int64_t t = 0; t < x.rows(); ++t)
    for (int64_t n = 0; n < out; ++n) {
      double exact = bias ? bias[n] : 0.0, magnitude = bias ? std::abs(bias[n]) : 0.0;
      for (int64_t k = 0; k < in; ++k) {
        const double p = static_cast<double>(x(t, k)) * w[static_cast<size_t>(n * in + k)];
        exact += p;
        magnitude += std::abs(p);
      }
      if (std::abs(y(t, n) - exact) > unit * magnitude && ++failures <= 5)
        ADD_FAILURE() << dtype_name(weight.dtype()) << " t=" << t << " n=" << n << ": " << y(t, n) << " vs "
                      << exact << " (bound " << unit * magnitude << ")";
    }
}

TEST(StoredLinear, EveryTypeMatchesDoubleReferenceInEveryKernelSet) {
  KernelGuard guard;
  const int64_t out = 37;  // not a multiple of any register tile
  for (const DType dtype : stored_types()) {
    const int64_t in = block_cols(dtype);
    const Tensor w = stored_weight(dtype, out, in, 11);
    const RowMatrix bias = random_matrix(1, out, 12);
    for (const int64_t tokens : {int64_t{1}, int64_t{7}}) {
      const RowMatrix x = random_matrix(tokens, in, 13);
      for (const KernelIsa isa : supported_sets()) {
        SCOPED_TRACE(std::string(kernel_isa_name(isa)) + " T=" + std::to_string(tokens));
        set_kernel_isa(isa);
        RowMatrix y;
        linear_stored(x, w, bias.data(), y);
        ASSERT_EQ(y.rows(), tokens);
        ASSERT_EQ(y.cols(), out);
        expect_close_to_reference(x, w, bias.data(), y);
      }
    }
  }
}

TEST(StoredLinear, KernelSetsThreadsAndTokenCountsGiveTheSameBits) {
  KernelGuard guard;
  const int64_t out = 131, tokens = 13;
  for (const DType dtype : stored_types()) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    const int64_t in = block_cols(dtype);
    const Tensor w = stored_weight(dtype, out, in, 21);
    const RowMatrix x = random_matrix(tokens, in, 22);
    set_kernel_isa(KernelIsa::Portable);
    set_thread_count(1);
    RowMatrix expected;
    linear_stored(x, w, nullptr, expected);
    for (const KernelIsa isa : supported_sets())
      for (const int threads : {1, 2, 3}) {
        set_kernel_isa(isa);
        set_thread_count(threads);
        RowMatrix y;
        linear_stored(x, w, nullptr, y);
        EXPECT_TRUE(same_bits(y, expected)) << kernel_isa_name(isa) << ", " << threads << " threads";
      }
    // One token alone gives the bits it gets inside the batch (decoding matches prompt processing).
    for (const KernelIsa isa : supported_sets()) {
      set_kernel_isa(isa);
      RowMatrix one;
      linear_stored(x.middleRows(5, 1), w, nullptr, one);
      EXPECT_EQ(std::memcmp(one.data(), expected.row(5).data(), static_cast<size_t>(out) * sizeof(float)), 0)
          << kernel_isa_name(isa);
    }
  }
}

// A 512-token prompt through a 1B-shaped projection's narrow slice (FFN width, too long for one L2 group).
TEST(StoredLinear, PromptSizedProductMatchesReference) {
  KernelGuard guard;
  const Tensor w = stored_weight(DType::F16, 70, 5632, 31);
  const RowMatrix x = random_matrix(512, 5632, 32);
  RowMatrix y;
  linear_stored(x, w, nullptr, y);
  expect_close_to_reference(x, w, nullptr, y);
  set_thread_count(2);
  RowMatrix two;
  linear_stored(x, w, nullptr, two);
  EXPECT_TRUE(same_bits(y, two));
}

TEST(StoredLinear, LinearOnFloatMatrixGivesLinearStoredBits) {
  KernelGuard guard;
  const RowMatrix w = random_matrix(45, 100, 41);
  const RowMatrix x = random_matrix(9, 100, 42);
  const Tensor stored = Tensor::from_f32("w", {45, 100}, std::span<const float>(w.data(), 4500));
  RowMatrix a, b;
  linear(x, w, nullptr, a);
  linear_stored(x, stored, nullptr, b);
  EXPECT_TRUE(same_bits(a, b));
}

TEST(StoredLinear, EmptyInputsAndShapeErrors) {
  const Tensor w = stored_weight(DType::Q8_0, 8, 64, 51);
  RowMatrix y;
  linear_stored(RowMatrix(0, 64), w, nullptr, y);
  EXPECT_EQ(y.rows(), 0);
  EXPECT_EQ(y.cols(), 8);
  EXPECT_THROW(linear_stored(RowMatrix::Zero(2, 32), w, nullptr, y), Error);
  // No input columns: every output is the bias.
  const Tensor empty = Tensor::from_f32("e", {3, 0}, {});
  const float bias[3] = {1.5f, -2.0f, 0.25f};
  linear_stored(RowMatrix(2, 0), empty, bias, y);
  ASSERT_EQ(y.rows(), 2);
  ASSERT_EQ(y.cols(), 3);
  EXPECT_EQ(y(1, 0), 1.5f);
  EXPECT_EQ(y(1, 1), -2.0f);
  EXPECT_EQ(y(0, 2), 0.25f);
}

TEST(GatherRows, DecodesRowsBitIdenticallyInEveryKernelSet) {
  KernelGuard guard;
  const std::vector<int32_t> ids = {3, 0, 9, 3};
  for (const DType dtype : stored_types()) {
    const Tensor table = stored_weight(dtype, 10, block_cols(dtype), 61);
    const std::vector<float> all = table.to_f32();
    for (const KernelIsa isa : supported_sets()) {
      set_kernel_isa(isa);
      RowMatrix out;
      gather_rows(table, ids, out);
      for (size_t i = 0; i < ids.size(); ++i)
        EXPECT_EQ(std::memcmp(out.row(static_cast<int64_t>(i)).data(), all.data() + ids[i] * table.dim(1),
                              static_cast<size_t>(table.dim(1)) * sizeof(float)),
                  0)
            << dtype_name(dtype) << " " << kernel_isa_name(isa) << " row " << i;
    }
  }
  const Tensor table = stored_weight(DType::F16, 4, 16, 62);
  RowMatrix out;
  const std::vector<int32_t> bad = {1, 4};
  try {
    gather_rows(table, bad, out);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("token id 4 at position 1"), std::string::npos) << e.what();
  }
}

TEST(KernelIsa, NamesRoundTripAndPortableIsAlwaysThere) {
  for (const auto isa : {KernelIsa::Portable, KernelIsa::Avx2, KernelIsa::Avx512})
    EXPECT_EQ(kernel_isa_from_name(kernel_isa_name(isa)), isa);
  EXPECT_FALSE(kernel_isa_from_name("sse2").has_value());
  EXPECT_TRUE(kernel_isa_supported(KernelIsa::Portable));
  KernelGuard guard;
  set_kernel_isa(KernelIsa::Portable);
  EXPECT_EQ(kernel_isa(), KernelIsa::Portable);
}

}  // namespace
}  // namespace slmopt
