// GPT-2 family: the Hugging Face folder loader (Conv1D transposition, prefix-less checkpoints, buffers dropped)
// agrees with the ONNX import of the same weights, and the forward pass decodes incrementally as it computes
// whole windows. Agreement with ONNX Runtime on the bundled capp-gpt2-onnx model is in
// tests/consumers/onnx_ort_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>

#include "slmopt/core/error.h"
#include "slmopt/exec/gpt2_runner.h"
#include "slmopt/io/hf_gpt2.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::model_path;
using testing::scratch_dir;

const std::vector<int32_t> kCappTokens = {49, 2, 8, 15, 18, 22, 26, 50, 30, 37, 45, 41, 48, 51};

// Writes the model as a Hugging Face GPT-2 folder: Conv1D weights back in [in, out], names with or without the
// "transformer." prefix, plus the causal-mask buffers transformers saves.
void write_hf_gpt2_folder(const Model& model, const std::string& dir, bool with_prefix) {
  std::vector<Tensor> stored;
  for (const auto& [name, t] : model.tensors()) {
    const std::string out_name = with_prefix ? name : name.substr(std::string("transformer.").size());
    const bool conv1d =
        t.rank() == 2 && name != names::gpt2::kTokenEmbedding && name != names::gpt2::kPositionEmbedding;
    stored.push_back(conv1d ? transposed_f32(t, out_name) : [&] {
      Tensor c = t;
      c.set_name(out_name);
      return c;
    }());
  }
  const std::vector<float> mask(16, 1.0f);
  stored.push_back(Tensor::from_f32(with_prefix ? "transformer.h.0.attn.bias" : "h.0.attn.bias", {1, 1, 4, 4}, mask));
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : stored) ptrs.push_back(&t);
  write_safetensors(dir + "/model.safetensors", ptrs);
  std::filesystem::copy_file(model_path("capp-gpt2-onnx/config.json"), dir + "/config.json");
}

TEST(Gpt2HfLoader, FolderLoadsTheSameWeightsAsTheOnnxImport) {
  const Model onnx = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  for (bool prefix : {true, false}) {
    SCOPED_TRACE(prefix ? "with prefix" : "without prefix");
    const std::string dir = scratch_dir(prefix ? "gpt2_hf_prefix" : "gpt2_hf_plain");
    write_hf_gpt2_folder(onnx, dir, prefix);
    const Model hf = load_model(dir);
    EXPECT_EQ(hf.config.family, Family::Gpt2);
    EXPECT_EQ(hf.config.num_heads, 4);
    ASSERT_EQ(hf.tensors().size(), onnx.tensors().size());
    for (const auto& [name, t] : onnx.tensors()) {
      ASSERT_TRUE(hf.has(name)) << name;
      EXPECT_EQ(hf.tensor(name).shape(), t.shape()) << name;
      EXPECT_EQ(hf.tensor(name).to_f32(), t.to_f32()) << name;
    }
  }
}

TEST(Gpt2HfLoader, RefusesUnsupportedConfigs) {
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}},
                      {"n_embd", 64},
                      {"n_head", 4},
                      {"n_layer", 2},
                      {"activation_function", "relu"}};
  EXPECT_TRUE(is_gpt2_config(j));
  EXPECT_THROW(parse_gpt2_config(j, "config.json"), Error);
  j["activation_function"] = "gelu_new";
  j["n_head"] = 5;  // 64 is not a multiple of 5
  EXPECT_THROW(parse_gpt2_config(j, "config.json"), Error);
  j["n_head"] = 4;
  const Config c = parse_gpt2_config(j, "config.json");
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(parse_gpt2_config(nlohmann::json::parse(gpt2_config_json(c)), "x").hidden_size, 64);
}

TEST(Gpt2Runner, IncrementalDecodingMatchesWholeWindow) {
  const Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  const Gpt2Runner runner(model);
  const RowMatrix full = runner.logits(kCappTokens);
  ASSERT_EQ(full.rows(), static_cast<int64_t>(kCappTokens.size()));
  ASSERT_EQ(full.cols(), 53);
  Gpt2Runner::Cache cache = runner.make_cache(32);
  const std::span<const int32_t> ids(kCappTokens);
  const RowMatrix first = runner.decode(cache, ids.first(5));
  RowMatrix stepped(full.rows(), full.cols());
  stepped.topRows(5) = first;
  for (size_t i = 5; i < ids.size(); ++i)
    stepped.row(static_cast<int64_t>(i)) = runner.decode(cache, ids.subspan(i, 1));
  const double range = full.maxCoeff() - full.minCoeff();
  EXPECT_LE((full - stepped).cwiseAbs().maxCoeff(), 1e-5 * range);
  EXPECT_THROW(runner.logits(std::vector<int32_t>{53}), Error);
}

TEST(Gpt2Runner, LayerNormAndGeluMatchTheirDefinitions) {
  RowMatrix x(1, 4);
  x << 1.0f, 2.0f, 3.0f, 6.0f;
  Eigen::VectorXf w(4), b(4);
  w << 1, 2, 1, 1;
  b << 0, 0, 1, 0;
  RowMatrix y;
  layer_norm(x, w, b, 0.0f, y);
  // mean 3, variance (4 + 1 + 0 + 9)/4 = 3.5
  const float s = 1.0f / std::sqrt(3.5f);
  EXPECT_NEAR(y(0, 0), -2 * s, 1e-6);
  EXPECT_NEAR(y(0, 1), -2 * s, 1e-6);
  EXPECT_NEAR(y(0, 2), 1.0f, 1e-6);
  EXPECT_NEAR(y(0, 3), 3 * s, 1e-6);
  RowMatrix g(1, 3);
  g << -1.0f, 0.0f, 1.0f;
  gelu_tanh_in_place(g);
  EXPECT_NEAR(g(0, 0), -0.158808f, 1e-5);  // torch.nn.functional.gelu(-1, approximate="tanh")
  EXPECT_EQ(g(0, 1), 0.0f);
  EXPECT_NEAR(g(0, 2), 0.841192f, 1e-5);
}

}  // namespace
}  // namespace slmopt
