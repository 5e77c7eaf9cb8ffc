// GPTQ solver: agreement with a plain unblocked double-precision transcription of the algorithm, lower output
// error than round-to-nearest, dead columns, damp escalation and thread-count determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>
#include <random>

#include <Eigen/Cholesky>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/block_formats.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/gguf_grid.h"
#include "slmopt/quant/gptq.h"
#include "slmopt/quant/int_grid.h"
#include "slmopt/quant/input_statistics.h"

namespace slmopt {
namespace {

struct Problem {
  int64_t rows, cols;
  std::vector<float> weight;
  RowMatrix inputs;  // [n, cols], correlated columns with uneven scales
};

Problem make_problem(int64_t rows, int64_t cols, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p{rows, cols, std::vector<float>(static_cast<size_t>(rows * cols)), RowMatrix(n, cols)};
  for (auto& v : p.weight) v = normal(rng) * 0.05f;
  RowMatrix mix(cols, cols);
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j < cols; ++j) mix(i, j) = (i == j ? 1.0f : 0.0f) + 0.3f * normal(rng) / std::sqrt(float(cols));
  RowMatrix z(n, cols);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < cols; ++j) z(i, j) = normal(rng) * (1.0f + 3.0f * float(j % 7 == 0));
  p.inputs = z * mix;
  return p;
}

Eigen::MatrixXd hessian_of(const RowMatrix& x) {
  InputStatistics stats(x.cols());
  stats.add(x);
  return stats.hessian();
}

// The textbook algorithm, one column at a time, no lazy batches, no tiling.
std::vector<float> reference_gptq(const std::vector<float>& weight, int64_t rows, int64_t cols, Eigen::MatrixXd h,
                                  const IntGridSpec& spec, bool act_order, bool static_groups, double damp) {
  Eigen::MatrixXd w(rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w(r, c) = weight[static_cast<size_t>(r * cols + c)];
  for (int64_t c = 0; c < cols; ++c)
    if (h(c, c) == 0) h(c, c) = 1, w.col(c).setZero();
  const int64_t gc = spec.group_columns(cols);
  std::vector<IntGroupParams> params(static_cast<size_t>(rows * spec.groups(cols)));
  auto fit = [&](int64_t r, int64_t g) {  // the last group may be shorter (a row that is not whole groups)
    std::vector<double> v(static_cast<size_t>(std::min(gc, cols - g * gc)));
    for (size_t c = 0; c < v.size(); ++c) v[c] = w(r, g * gc + static_cast<int64_t>(c));
    params[static_cast<size_t>(r * spec.groups(cols) + g)] = fit_int_group(spec, v);
  };
  if (static_groups || act_order)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < spec.groups(cols); ++g) fit(r, g);
  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (act_order) std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return h(a, a) > h(b, b); });
  Eigen::MatrixXd hp(cols, cols), wp(rows, cols);
  for (int64_t i = 0; i < cols; ++i) {
    wp.col(i) = w.col(perm[i]);
    for (int64_t j = 0; j < cols; ++j) hp(i, j) = h(perm[i], perm[j]);
  }
  hp.diagonal().array() += damp * hp.diagonal().mean();
  Eigen::MatrixXd inv = hp.llt().solve(Eigen::MatrixXd::Identity(cols, cols));
  inv = (inv + inv.transpose()) * 0.5;
  const Eigen::MatrixXd u = inv.llt().matrixU();
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t j = 0; j < cols; ++j) {
    const int64_t orig = perm[j];
    for (int64_t r = 0; r < rows; ++r) {
      if (!(static_groups || act_order) && orig % gc == 0) {
        std::vector<double> v(static_cast<size_t>(std::min(gc, cols - j)));
        for (size_t c = 0; c < v.size(); ++c) v[c] = wp(r, j + static_cast<int64_t>(c));
        params[static_cast<size_t>(r * spec.groups(cols) + orig / gc)] = fit_int_group(spec, v);
      }
      const IntGroupParams& p = params[static_cast<size_t>(r * spec.groups(cols) + orig / gc)];
      const double q = p.dequantize(p.quantize(wp(r, j), spec.max_code()));
      const double e = (wp(r, j) - q) / u(j, j);
      for (int64_t k = j + 1; k < cols; ++k) wp(r, k) -= e * u(j, k);
      out[static_cast<size_t>(r * cols + orig)] = static_cast<float>(q);
    }
  }
  return out;
}

struct Case {
  int64_t group;
  bool act_order, static_groups, symmetric;
  int bits;
};

class GptqReferenceTest : public ::testing::TestWithParam<Case> {};

TEST_P(GptqReferenceTest, MatchesUnblockedDoubleImplementation) {
  const Case k = GetParam();
  const Problem p = make_problem(40, 96, 400, 7);
  const Eigen::MatrixXd h = hessian_of(p.inputs);
  const IntGridSpec spec{k.bits, k.group, k.symmetric};
  IntWeightGrid grid(p.rows, p.cols, spec);
  GptqOptions options;
  options.act_order = k.act_order;
  options.static_groups = k.static_groups;
  options.block_size = 32;  // several lazy batches on 96 columns
  const std::vector<float> got = gptq_quantize(p.weight, h, grid, options);
  const std::vector<float> want =
      reference_gptq(p.weight, p.rows, p.cols, h, spec, k.act_order, k.static_groups, options.damp_percent);
  // Same algorithm in a different summation order: the codes agree except, at worst, for values within
  // rounding noise of a decision boundary.
  int64_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i];
  EXPECT_LE(differ, static_cast<int64_t>(got.size() / 500)) << "of " << got.size();
  // And the recorded codes decode to exactly the returned values.
  EXPECT_EQ(grid.result().dequantize(), got);
}

INSTANTIATE_TEST_SUITE_P(Variants, GptqReferenceTest,
                         ::testing::Values(Case{-1, false, false, false, 4}, Case{32, false, false, false, 4},
                                           Case{16, false, false, true, 3}, Case{32, true, false, false, 4},
                                           Case{32, false, true, false, 2}, Case{48, false, false, false, 8},
                                           // 96 columns = 64 + a shorter 32, and 40 + 40 + 16 (act-order)
                                           Case{64, false, false, false, 4}, Case{40, true, false, false, 4}));

// The F32 error form against the same sum in double, written out: Σ_r (w_r − q_r)ᵀ G (w_r − q_r), and the
// relative error it gives; then the same bits at 1 and 2 threads.
TEST(OutputErrorForm, MatchesTheDoubleQuadraticFormAndIsThreadIndependent) {
  const Problem p = make_problem(70, 96, 400, 11);  // 70 rows: a full 64-row tile and a partial one
  const Eigen::MatrixXd h = hessian_of(p.inputs);
  std::vector<float> q(p.weight);
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  for (auto& v : q) v += noise(rng);
  double num = 0, den = 0;
  for (int64_t r = 0; r < p.rows; ++r) {
    Eigen::VectorXd d(p.cols), w(p.cols);
    for (int64_t c = 0; c < p.cols; ++c) {
      const size_t i = static_cast<size_t>(r * p.cols + c);
      d[c] = static_cast<double>(p.weight[i]) - q[i], w[c] = p.weight[i];
    }
    num += d.dot(h * d), den += w.dot(h * w);
  }
  const OutputErrorForm form(h);
  double weight_form = 0;
  set_thread_count(1);
  const double one = form(p.weight, q, p.rows, &weight_form);
  set_thread_count(2);
  const double two = form(p.weight, q, p.rows);
  set_thread_count(0);
  EXPECT_NEAR(one, num, 1e-5 * num);  // F32 products over 96 columns: ~1e-6 relative
  EXPECT_NEAR(weight_form, den, 1e-5 * den);
  EXPECT_EQ(one, two);
  EXPECT_NEAR(relative_output_error(p.weight, q, p.rows, h), std::sqrt(num / den), 1e-5 * std::sqrt(num / den));
  EXPECT_THROW(form(p.weight, std::span<const float>(q).first(q.size() - 1), p.rows), Error);
}

// The tiled accumulation into a double total is one addition per element: exactly Eigen's sum, the lower half
// mirrored from an upper-only product, at any thread count. 150 columns: two full 64-column tiles and a partial.
TEST(AddProductToTotal, EqualsTheDirectSumFullOrMirroredAtAnyThreadCount) {
  const int64_t n = 150;
  std::mt19937 rng(3);
  std::normal_distribution<float> value(0.0f, 1.0f);
  std::vector<float> product(static_cast<size_t>(n * n)), upper(product.size(), 0.0f);
  for (auto& v : product) v = value(rng);
  Eigen::MatrixXd start(n, n), full(n, n), symmetric(n, n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      start(i, j) = value(rng);
      const float p = product[static_cast<size_t>(i * n + j)];
      if (i <= j) upper[static_cast<size_t>(i * n + j)] = p;
      full(i, j) = start(i, j) + static_cast<double>(p);
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      symmetric(i, j) = start(i, j) + static_cast<double>(upper[static_cast<size_t>(std::min(i, j) * n + std::max(i, j))]);
  for (int threads : {1, 2, 3}) {
    set_thread_count(threads);
    Eigen::MatrixXd total = start;
    add_product_to_total(total, product.data(), /*upper_only=*/false);
    EXPECT_EQ(total, full) << threads << " threads";
    total = start;
    add_product_to_total(total, upper.data(), /*upper_only=*/true);
    EXPECT_EQ(total, symmetric) << threads << " threads";
  }
  set_thread_count(0);
}

TEST(Gptq, LowersOutputErrorVersusRoundToNearest) {
  const Problem p = make_problem(64, 128, 600, 11);
  const Eigen::MatrixXd h = hessian_of(p.inputs);
  for (const IntGridSpec spec : {IntGridSpec{4, 32, false}, IntGridSpec{3, 128, false}, IntGridSpec{4, -1, true}}) {
    IntWeightGrid g1(p.rows, p.cols, spec), g2(p.rows, p.cols, spec);
    const std::vector<float> gptq = gptq_quantize(p.weight, h, g1, {});
    const std::vector<float> rtn = rtn_quantize(p.weight, g2);
    const double e_gptq = relative_output_error(p.weight, gptq, p.rows, h);
    const double e_rtn = relative_output_error(p.weight, rtn, p.rows, h);
    EXPECT_LT(e_gptq, 0.85 * e_rtn) << spec.describe() << " gptq " << e_gptq << " rtn " << e_rtn;
  }
}

// GPTAQ (gptq.h: gptaq_correction, gptaq_target): when the inputs the quantized model produces drift from the
// float model's (X̃ = X·(I + 0.15·M) + noise, what rounding earlier layers does), GPTQ onto the corrected target
// matches the float output X·Wᵀ better than plain GPTQ on X̃, with and without act-order; with no drift the
// correction is exactly zero, and P only moves later columns (strictly upper in the sweep's order).
TEST(Gptaq, FitsTheFloatOutputOnDriftedInputs) {
  const Problem p = make_problem(48, 128, 800, 21);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  RowMatrix mix(p.cols, p.cols);
  for (auto& v : mix.reshaped()) v = 0.15f * normal(rng) / std::sqrt(float(p.cols));
  RowMatrix xq = p.inputs + p.inputs * mix;
  for (auto& v : xq.reshaped()) v += 0.05f * normal(rng);
  const Eigen::MatrixXd h = hessian_of(xq);
  const Eigen::MatrixXd xd = p.inputs.cast<double>(), xqd = xq.cast<double>();
  const Eigen::MatrixXd cross = (xd - xqd).transpose() * xqd * (2.0 / static_cast<double>(xq.rows()));
  using Rows = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Rows w = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                     p.weight.data(), p.rows, p.cols).cast<double>();
  const Eigen::MatrixXd reference = xd * w.transpose();
  // ||X̃·Ŵᵀ − X·Wᵀ|| / ||X·Wᵀ||: the float output the quantized layer should reproduce.
  const auto asym_error = [&](const std::vector<float>& q) {
    const Rows qd = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                        q.data(), p.rows, p.cols).cast<double>();
    return (xqd * qd.transpose() - reference).norm() / reference.norm();
  };
  for (const bool act_order : {false, true}) {
    GptqOptions o;
    o.act_order = act_order;
    const GptqFactor f = gptq_factor(h, o);
    const GptaqCorrection zero = gptaq_correction(f, Eigen::MatrixXd::Zero(p.cols, p.cols), 0.25);
    EXPECT_EQ(gptaq_target(p.weight, p.rows, f, zero), p.weight);
    IntWeightGrid g0(p.rows, p.cols, {4, 32, false});
    const double plain = asym_error(gptq_quantize(p.weight, f, g0, o));
    for (const double alpha : {0.25, 1.0}) {
      const GptaqCorrection corr = gptaq_correction(f, cross, alpha);
      for (int64_t i = 0; i < p.cols; ++i)
        for (int64_t j = 0; j <= i; ++j) ASSERT_EQ(corr.at(i, j), 0.0f) << i << "," << j;
      // The published formula in double (Eigen), P = α·triu₁(D·Uᵀ)·U in the sweep's order: the F32 products
      // agree to 1e-4 of P's largest element.
      Eigen::MatrixXd d(p.cols, p.cols), u(p.cols, p.cols);
      for (int64_t i = 0; i < p.cols; ++i)
        for (int64_t j = 0; j < p.cols; ++j) {
          d(i, j) = cross(f.perm[static_cast<size_t>(i)], f.perm[static_cast<size_t>(j)]);
          u(i, j) = j >= i ? f.u[static_cast<size_t>(i * p.cols + j)] : 0.0;
        }
      Eigen::MatrixXd a = d * u.transpose();
      a.triangularView<Eigen::Lower>().setZero();
      const Eigen::MatrixXd reference_p = alpha * a * u;
      double worst = 0;
      for (int64_t i = 0; i < p.cols; ++i)
        for (int64_t j = 0; j < p.cols; ++j) worst = std::max(worst, std::abs(corr.at(i, j) - reference_p(i, j)));
      EXPECT_LT(worst, 1e-4 * reference_p.cwiseAbs().maxCoeff()) << "act_order " << act_order << " alpha " << alpha;
      IntWeightGrid g1(p.rows, p.cols, {4, 32, false});
      const double asym = asym_error(gptq_quantize(gptaq_target(p.weight, p.rows, f, corr), f, g1, o));
      std::cout << "[ gptaq ] act_order " << act_order << " alpha " << alpha << ": float-output error " << asym
                << " (plain GPTQ " << plain << ")\n";
      EXPECT_LT(asym, (alpha < 1 ? 0.97 : 0.9) * plain) << "act_order " << act_order << " alpha " << alpha;
    }
  }
}

TEST(Gptq, DeadColumnsBecomeZeroAndStayFinite) {
  Problem p = make_problem(16, 64, 200, 3);
  for (int64_t i = 0; i < p.inputs.rows(); ++i) p.inputs(i, 5) = p.inputs(i, 40) = 0;
  const Eigen::MatrixXd h = hessian_of(p.inputs);
  IntWeightGrid grid(p.rows, p.cols, {4, 32, false});
  GptqStats stats;
  const std::vector<float> q = gptq_quantize(p.weight, h, grid, {}, &stats);
  EXPECT_EQ(stats.dead_columns, 2);
  for (int64_t r = 0; r < p.rows; ++r) {
    EXPECT_EQ(q[static_cast<size_t>(r * p.cols + 5)], 0.0f);
    EXPECT_EQ(q[static_cast<size_t>(r * p.cols + 40)], 0.0f);
  }
  for (float v : q) EXPECT_TRUE(std::isfinite(v));
}

TEST(Gptq, RaisesDampUntilCholeskySucceeds) {
  // Indefinite 2x2 blocks (eigenvalues 4 and −2): damp 0.01, 0.1 and 1 (eigenvalue −1) fail, 10 works.
  const int64_t cols = 4;
  Eigen::MatrixXd h = Eigen::MatrixXd::Zero(cols, cols);
  for (int64_t b = 0; b < cols; b += 2) h(b, b) = h(b + 1, b + 1) = 1, h(b, b + 1) = h(b + 1, b) = 3;
  std::vector<float> w = {0.1f, -0.2f, 0.3f, 0.05f, -0.4f, 0.2f, 0.1f, 0.0f};
  IntWeightGrid grid(2, cols, {4, -1, false});
  GptqStats stats;
  const std::vector<float> q = gptq_quantize(w, h, grid, {}, &stats);
  EXPECT_EQ(stats.damp_raises, 3);
  EXPECT_NEAR(stats.damp_percent_used, 10.0, 1e-12);
  for (float v : q) EXPECT_TRUE(std::isfinite(v));
}

TEST(Gptq, ByteIdenticalForAnyThreadCount) {
  const Problem p = make_problem(200, 256, 300, 5);  // several 64-row tiles
  const Eigen::MatrixXd h = hessian_of(p.inputs);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    set_thread_count(threads);
    IntWeightGrid grid(p.rows, p.cols, {4, 64, false});
    GptqOptions options;
    options.act_order = true;
    results.push_back(gptq_quantize(p.weight, h, grid, options));
    InputStatistics stats(p.cols);
    stats.add(p.inputs);
    EXPECT_EQ(stats.hessian(), h) << threads << " threads";
  }
  set_thread_count(0);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

class GptqGgufGrid : public ::testing::TestWithParam<DType> {};

TEST_P(GptqGgufGrid, PacksIntoBlocksThatDecodeToTheChosenWeights) {
  const DType type = GetParam();
  const Problem p = make_problem(24, 512, 700, 13);
  const Eigen::MatrixXd h = hessian_of(p.inputs);
  std::vector<float> importance(static_cast<size_t>(p.cols));
  for (int64_t i = 0; i < p.cols; ++i) importance[static_cast<size_t>(i)] = static_cast<float>(h(i, i));
  GgufWeightGrid grid(p.weight, p.rows, p.cols, type, importance.data(), "w");
  GptqOptions options;
  options.act_order = true;
  options.order_group = grid.joint_columns();
  const std::vector<float> chosen = gptq_quantize(p.weight, h, grid, options);
  const Tensor packed = grid.pack("w");
  ASSERT_EQ(packed.dtype(), type);
  ASSERT_EQ(packed.nbytes(), p.rows * row_bytes(type, p.cols));
  std::vector<float> decoded(chosen.size());
  for (int64_t r = 0; r < p.rows; ++r)
    dequantize_row(type, packed.data() + r * row_bytes(type, p.cols), decoded.data() + r * p.cols, p.cols);
  EXPECT_EQ(decoded, chosen);  // bit for bit: the levels come from the decoder itself
  GgufWeightGrid rtn_grid(p.weight, p.rows, p.cols, type, importance.data(), "w");
  const std::vector<float> rtn = rtn_quantize(p.weight, rtn_grid);
  const double e_gptq = relative_output_error(p.weight, chosen, p.rows, h);
  const double e_rtn = relative_output_error(p.weight, rtn, p.rows, h);
  EXPECT_LT(e_gptq, e_rtn) << dtype_name(type);
}

INSTANTIATE_TEST_SUITE_P(Types, GptqGgufGrid,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                           DType::IQ4_NL, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                           DType::Q6_K, DType::IQ4_XS, DType::IQ3_S, DType::IQ3_XXS, DType::IQ2_S,
                                           DType::IQ2_XS, DType::IQ2_XXS, DType::IQ1_M, DType::IQ1_S),
                         [](const auto& param_info) { return std::string(dtype_name(param_info.param)); });

// The lattice i-quants round 8 columns jointly: RTN on their grid is the block encoder itself (the same bytes as
// quantize_row with the same importance), and act-order keeps the 8-column groups whole.
TEST(GptqLatticeGrid, RtnIsTheEncoderAndActOrderKeepsGroupsWhole) {
  const Problem p = make_problem(8, 512, 300, 21);
  const Eigen::MatrixXd h = hessian_of(p.inputs);
  std::vector<float> importance(static_cast<size_t>(p.cols));
  for (int64_t i = 0; i < p.cols; ++i) importance[static_cast<size_t>(i)] = static_cast<float>(h(i, i));
  for (DType type : {DType::IQ2_XS, DType::IQ1_S, DType::IQ3_XXS}) {
    GgufWeightGrid grid(p.weight, p.rows, p.cols, type, importance.data(), "w");
    EXPECT_EQ(grid.joint_columns(), 8);
    rtn_quantize(p.weight, grid);
    std::vector<uint8_t> encoded(static_cast<size_t>(p.rows) * row_bytes(type, p.cols));
    for (int64_t r = 0; r < p.rows; ++r)
      quantize_row(type, p.weight.data() + r * p.cols, encoded.data() + r * row_bytes(type, p.cols), p.cols,
                   importance.data());
    const Tensor packed = grid.pack("w");
    EXPECT_TRUE(std::equal(encoded.begin(), encoded.end(), packed.data())) << dtype_name(type);
  }
  GptqOptions options;
  options.act_order = true;
  GgufWeightGrid grid(p.weight, p.rows, p.cols, DType::IQ2_XS, importance.data(), "w");
  EXPECT_THROW(gptq_quantize(p.weight, h, grid, options), Error);  // column-wise act-order splits the groups
  options.order_group = 8;
  const GptqFactor f = gptq_factor(h, options);
  for (int64_t i = 0; i < p.cols; ++i)
    EXPECT_EQ(f.perm[static_cast<size_t>(i)] % 8, i % 8) << i;
  EXPECT_NO_THROW(gptq_quantize(p.weight, f, grid, options));
}

TEST(Gptq, RejectsInvalidGrids) {
  EXPECT_THROW(IntWeightGrid(4, 100, IntGridSpec{4, 0, false}), Error);
  EXPECT_THROW(IntWeightGrid(4, 64, IntGridSpec{5, 32, false}), Error);
}

// A row that is not a whole number of groups ends in a shorter group, which is the same as padding the row with
// zero columns: a min/max fit always spans 0, so the zeros change no group's scale or zero point.
TEST(Gptq, ShorterLastGroupEqualsZeroPadding) {
  const Problem p = make_problem(8, 100, 10, 5);
  const IntGridSpec spec{4, 32, false};
  std::vector<float> padded(static_cast<size_t>(p.rows * 128), 0.0f);
  for (int64_t r = 0; r < p.rows; ++r)
    std::copy_n(p.weight.begin() + r * p.cols, p.cols, padded.begin() + r * 128);
  const GridQuantizedWeight a = quantize_grid_rtn(p.weight, p.rows, p.cols, spec);
  const GridQuantizedWeight b = quantize_grid_rtn(padded, p.rows, 128, spec);
  ASSERT_EQ(a.groups(), 4);
  for (int64_t r = 0; r < p.rows; ++r)
    for (int64_t c = 0; c < p.cols; ++c) {
      EXPECT_EQ(a.codes[static_cast<size_t>(r * p.cols + c)], b.codes[static_cast<size_t>(r * 128 + c)]);
      EXPECT_EQ(a.param(r, c).scale, b.param(r, c).scale);
      EXPECT_EQ(a.param(r, c).zero, b.param(r, c).zero);
    }
}

}  // namespace
}  // namespace slmopt
