// The token embedding's GPTQ Hessian (quant/embedding_hessian.h): hand-checked sums of the readers' gain-scaled
// Gram matrices, and GPTQ of the embedding and the output head inside calibration (--gptq-head-embed).
#include <gtest/gtest.h>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/quant/embedding_hessian.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"

namespace slmopt {
namespace {

// Two readers behind one norm, written out by hand: W1 = [[1, 2, 0], [0, 1, -1]], W2 = [[2, 0, 1]],
// gain g = (1, 2, 0.5), E[1/ms] = 0.5:
//   W1ᵀW1 + W2ᵀW2 = [[5, 2, 2], [2, 5, -1], [2, -1, 2]],  H_ij = 0.5 · g_i g_j · that.
TEST(EmbeddingHessian, SumsGainScaledGramsOfTheReaders) {
  const Tensor w1 = Tensor::from_f32("w1", {2, 3}, std::vector<float>{1, 2, 0, 0, 1, -1});
  const Tensor w2 = Tensor::from_f32("w2", {1, 3}, std::vector<float>{2, 0, 1});
  const Tensor gain = Tensor::from_f32("g", {3}, std::vector<float>{1, 2, 0.5f});
  EmbeddingHessian h(3);
  h.add_readers(&gain, false, {&w1, &w2}, 0.5);
  const double gram[3][3] = {{5, 2, 2}, {2, 5, -1}, {2, -1, 2}};
  const double g[3] = {1, 2, 0.5};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_DOUBLE_EQ(h.hessian()(i, j), 0.5 * g[i] * g[j] * gram[i][j]) << i << "," << j;
  EXPECT_EQ(h.readers(), 2);

  // Gemma's stored gain w scales by 1 + w; no norm means gain 1. Terms add up.
  const Tensor offset_gain = Tensor::from_f32("g", {3}, std::vector<float>{0, 1, -0.5f});  // 1 + w = g above
  EmbeddingHessian unit(3), twice(3);
  unit.add_readers(&offset_gain, true, {&w1, &w2}, 0.5);
  EXPECT_EQ(unit.hessian(), h.hessian());
  twice.add_readers(nullptr, false, {&w2}, 1.0);
  twice.add_readers(nullptr, false, {&w2}, 1.0);
  EXPECT_DOUBLE_EQ(twice.hessian()(0, 0), 8.0);  // 2 · (2·2)
  EXPECT_DOUBLE_EQ(twice.hessian()(0, 2), 4.0);  // 2 · (2·1)
  EXPECT_DOUBLE_EQ(twice.hessian()(1, 1), 0.0);

  const Tensor wrong = Tensor::from_f32("wrong", {1, 2}, std::vector<float>{1, 1});
  EXPECT_THROW(h.add_readers(nullptr, false, {&wrong}, 1.0), Error);
}

// Rows (3, 4) and (0, 0) with eps 1: mean squares 12.5 and 0, so E[1/(ms + eps)] = (1/13.5 + 1/1) / 2.
TEST(EmbeddingHessian, MeanInverseSquareOverEveryRow) {
  RowMatrix a(1, 2), b(1, 2);
  a << 3, 4;
  b << 0, 0;
  EXPECT_DOUBLE_EQ(mean_inverse_square({a, b}, 1.0), (1.0 / 13.5 + 1.0) / 2.0);
  EXPECT_EQ(mean_inverse_square({}, 1.0), 0.0);
}

struct Calibrated {
  Model model;
  CalibrationReport report;
};

Calibrated calibrate_kjv(bool head_embed, DType dtype) {
  Calibrated c{load_hf_model(testing::model_path("llama-5m-kjv")), {}};
  const Tokenizer tok(c.model.vocab);
  const auto windows = sample_calibration_windows(tokenize_file(tok, testing::data_path("kjv-calib.txt")), 4, 64, 3,
                                                  c.model.vocab.bos_id);
  CalibrationOptions options;
  options.progress = false;
  options.embedding_and_head = head_embed;
  c.report = quantize_calibrated(c.model, windows, uniform_gguf_type(dtype), options).report;
  return c;
}

const LinearReport* find(const CalibrationReport& r, const std::string& name) {
  for (const LinearReport& l : r.linears)
    if (l.name == name) return &l;
  return nullptr;
}

// With embedding_and_head, the (untied) embedding and head leave calibration as Q4_0 blocks, GPTQ's weighted
// error below round-to-nearest's on the same grid; without it they stay float and unreported. The block linears
// are unchanged by the option (the embedding and head come after the last block).
TEST(EmbeddingHessian, CalibrationRoundsEmbeddingAndHeadWithGptq) {
  const Calibrated plain = calibrate_kjv(false, DType::Q4_0), both = calibrate_kjv(true, DType::Q4_0);
  EXPECT_NE(plain.model.tensor(names::kEmbedTokens).dtype(), DType::Q4_0);  // as stored (BF16)
  EXPECT_EQ(find(plain.report, names::kEmbedTokens), nullptr);
  for (const std::string& name : {names::kEmbedTokens, names::kLmHead}) {
    EXPECT_EQ(both.model.tensor(name).dtype(), DType::Q4_0) << name;
    const LinearReport* r = find(both.report, name);
    ASSERT_NE(r, nullptr) << name;
    EXPECT_GT(r->error, 0) << name;
    EXPECT_LT(r->error, r->rtn_error) << name;
  }
  // Measured: embedding 0.061 against 0.068 for round-to-nearest on 128 windows of 512; at least 3 % lower here.
  const LinearReport* e = find(both.report, names::kEmbedTokens);
  EXPECT_LT(e->error, 0.97 * e->rtn_error);
  const auto bytes = [](const Tensor& t) { return std::vector<uint8_t>(t.data(), t.data() + t.nbytes()); };
  EXPECT_EQ(bytes(plain.model.tensor(names::down_proj(3))), bytes(both.model.tensor(names::down_proj(3))));
}

TEST(EmbeddingHessian, GptqOfEmbeddingAndHeadIsThreadIndependent) {
  const auto bytes = [](const Tensor& t) { return std::vector<uint8_t>(t.data(), t.data() + t.nbytes()); };
  std::vector<std::vector<uint8_t>> embedding, head;
  for (int threads : {1, 2, 3}) {
    set_thread_count(threads);
    const Calibrated c = calibrate_kjv(true, DType::Q4_K);
    embedding.push_back(bytes(c.model.tensor(names::kEmbedTokens)));
    head.push_back(bytes(c.model.tensor(names::kLmHead)));
  }
  set_thread_count(0);
  EXPECT_EQ(embedding[0], embedding[1]);
  EXPECT_EQ(embedding[0], embedding[2]);
  EXPECT_EQ(head[0], head[1]);
  EXPECT_EQ(head[0], head[2]);
}

}  // namespace
}  // namespace slmopt
