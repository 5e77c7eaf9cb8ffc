// WeightGrid::quantize_column (GPTQ's per-column rounding over a row tile) against quantize() element by element:
// identical grid values and identical recorded codes (the packed blocks) for every per-element GGUF grid type
// and the integer grid, on random values and on adversarial ones (exact midpoints between neighbouring levels and
// the floats either side, values on the levels, beyond the extreme levels, ±inf, NaN, zero-scale blocks whose
// levels are all equal).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "slmopt/quant/gguf_grid.h"
#include "slmopt/quant/weight_grid.h"

namespace slmopt {
namespace {

constexpr int64_t kRows = 12, kCols = 512;

// Weights with every fourth row's first 256 columns zero (d = 0 blocks: all levels equal) and uneven scales.
std::vector<float> grid_weights(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(kRows * kCols));
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kCols; ++c)
      w[static_cast<size_t>(r * kCols + c)] = r % 4 == 3 && c < 256 ? 0.0f : normal(rng) * 0.02f * (1.0f + float(c % 37 == 0) * 5);
  return w;
}

// The values to round at (row, col): random ones around the weights, then, per element, one of the adversarial
// kinds built from the distinct levels of the element's group (found by rounding a fine sweep with a probe grid).
std::vector<float> test_values(GgufWeightGrid& probe, const std::vector<float>& w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(w.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = w[i] + normal(rng) * 0.01f;
  const float inf = std::numeric_limits<float>::infinity();
  std::map<std::pair<int64_t, int64_t>, std::vector<float>> group_levels;  // distinct levels per (row, group)
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kCols; ++c) {
      const size_t i = static_cast<size_t>(r * kCols + c);
      const int kind = static_cast<int>(rng() % 8);
      if (kind < 2) continue;  // random
      std::vector<float>& levels = group_levels[{r, c / probe.group_columns()}];
      if (levels.empty()) {
        std::set<float> found;
        for (int k = -400; k <= 400; ++k) found.insert(probe.quantize(r, c, k * 2.5e-4));
        levels.assign(found.begin(), found.end());
      }
      const size_t a = rng() % levels.size(), b = std::min(a + 1, levels.size() - 1);
      const float mid = levels[a] + (levels[b] - levels[a]) / 2;  // exact for neighbours of one sign
      switch (kind) {
        case 2: v[i] = mid; break;
        case 3: v[i] = std::nextafter(mid, inf); break;
        case 4: v[i] = std::nextafter(mid, -inf); break;
        case 5: v[i] = levels[a]; break;
        case 6: v[i] = std::array<float, 4>{inf, -inf, std::numeric_limits<float>::quiet_NaN(), 1e30f}[rng() % 4]; break;
        default: v[i] = (levels.front() - levels.back()) * (rng() % 2 ? 3.0f : -3.0f); break;  // beyond the ends
      }
    }
  return v;
}

void expect_bits_equal(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what;
}

TEST(WeightGridColumn, GgufGridsMatchQuantizeElementByElement) {
  for (DType dtype : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL, DType::Q2_K,
                      DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS}) {
    SCOPED_TRACE(dtype_name(dtype));
    const std::vector<float> w = grid_weights(3);
    GgufWeightGrid by_element(w, kRows, kCols, dtype, nullptr, "t"), by_column(w, kRows, kCols, dtype, nullptr, "t"),
        probe(w, kRows, kCols, dtype, nullptr, "t");
    ASSERT_EQ(by_column.joint_columns(), 1);
    const std::vector<float> v = test_values(probe, w, 5);
    std::vector<float> want(v.size()), got(v.size()), column(kRows), out(kRows);
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t c = 0; c < kCols; ++c)
        want[static_cast<size_t>(r * kCols + c)] = by_element.quantize(r, c, v[static_cast<size_t>(r * kCols + c)]);
    for (int64_t c = 0; c < kCols; ++c) {
      // Row tiles of uneven sizes: rows [0, 5) and [5, 12).
      for (int64_t r = 0; r < kRows; ++r) column[static_cast<size_t>(r)] = v[static_cast<size_t>(r * kCols + c)];
      by_column.quantize_column(0, 5, c, column.data(), out.data());
      by_column.quantize_column(5, kRows - 5, c, column.data() + 5, out.data() + 5);
      for (int64_t r = 0; r < kRows; ++r) got[static_cast<size_t>(r * kCols + c)] = out[static_cast<size_t>(r)];
    }
    expect_bits_equal(got, want, "grid values");
    const Tensor packed_column = by_column.pack("t"), packed_element = by_element.pack("t");  // the recorded codes
    ASSERT_EQ(packed_column.nbytes(), packed_element.nbytes());
    EXPECT_EQ(std::memcmp(packed_column.data(), packed_element.data(), packed_column.nbytes()), 0);
  }
}

TEST(WeightGridColumn, IntGridDefaultPathMatchesQuantize) {
  const std::vector<float> w = grid_weights(4);
  const IntGridSpec spec{4, 32, false};
  IntWeightGrid a(kRows, kCols, spec), b(kRows, kCols, spec);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t g = 0; g < kCols / 32; ++g) {
      std::vector<double> values(w.begin() + r * kCols + g * 32, w.begin() + r * kCols + g * 32 + 32);
      a.fit_group(r, g, values);
      b.fit_group(r, g, values);
    }
  std::vector<float> want(w.size()), got(w.size()), column(kRows), out(kRows);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kCols; ++c) want[static_cast<size_t>(r * kCols + c)] = a.quantize(r, c, w[static_cast<size_t>(r * kCols + c)] * 1.1f);
  for (int64_t c = 0; c < kCols; ++c) {
    for (int64_t r = 0; r < kRows; ++r) column[static_cast<size_t>(r)] = w[static_cast<size_t>(r * kCols + c)] * 1.1f;
    b.quantize_column(0, kRows, c, column.data(), out.data());
    for (int64_t r = 0; r < kRows; ++r) got[static_cast<size_t>(r * kCols + c)] = out[static_cast<size_t>(r)];
  }
  expect_bits_equal(got, want, "grid values");
  EXPECT_EQ(b.result().codes, a.result().codes);
}

}  // namespace
}  // namespace slmopt
