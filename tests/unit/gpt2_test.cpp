// GPT-2 family: the Hugging Face folder loader (Conv1D transposition, c_attn split onto canonical q/k/v,
// prefix-less checkpoints, buffers dropped) agrees with the ONNX import of the same weights, and the shared forward
// pass runs GPT-2 from its decoder description (LayerNorm + bias, learned positions, GELU) as the double-precision
// reference computes it, decoding incrementally as it computes whole windows. Agreement with ONNX Runtime on the
// bundled capp-gpt2-onnx model is in tests/consumers/onnx_ort_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "forward_reference.h"
#include "slmopt/exec/kernels.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::model_path;
using testing::scratch_dir;

const std::vector<int32_t> kCappTokens = {49, 2, 8, 15, 18, 22, 26, 50, 30, 37, 45, 41, 48, 51};

// Writes the model as a Hugging Face GPT-2 folder (write_hf_model: Conv1D weights back in [in, out], c_attn fused),
// then rewrites its tensors with or without the "transformer." prefix, plus the causal-mask buffers older
// transformers versions saved.
void write_hf_gpt2_folder(const Model& model, const std::string& dir, bool with_prefix) {
  write_hf_model(model, dir);
  SafetensorsCheckpoint written = read_safetensors_checkpoint(dir);
  std::vector<Tensor> stored;
  for (Tensor& t : written.tensors) {
    Tensor copy = Tensor::owned(t.name(), t.shape(), t.dtype(), std::vector<uint8_t>(t.data(), t.data() + t.nbytes()));
    if (!with_prefix && copy.name().rfind("transformer.", 0) == 0)
      copy.set_name(copy.name().substr(std::string("transformer.").size()));
    stored.push_back(std::move(copy));
  }
  const std::vector<float> mask(16, 1.0f);
  stored.push_back(Tensor::from_f32(with_prefix ? "transformer.h.0.attn.bias" : "h.0.attn.bias", {1, 1, 4, 4}, mask));
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : stored) ptrs.push_back(&t);
  written.tensors.clear();
  write_safetensors(dir + "/model.safetensors", ptrs);
}

TEST(Gpt2HfLoader, FolderLoadsTheSameWeightsAsTheOnnxImport) {
  const Model onnx = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  for (bool prefix : {true, false}) {
    SCOPED_TRACE(prefix ? "with prefix" : "without prefix");
    const std::string dir = scratch_dir(prefix ? "gpt2_hf_prefix" : "gpt2_hf_plain");
    write_hf_gpt2_folder(onnx, dir, prefix);
    const Model hf = load_model(dir);
    EXPECT_EQ(hf.config.family, "gpt2");
    EXPECT_EQ(hf.config.num_heads, 4);
    ASSERT_EQ(hf.tensors().size(), onnx.tensors().size());
    for (const auto& [name, t] : onnx.tensors()) {
      ASSERT_TRUE(hf.has(name)) << name;
      EXPECT_EQ(hf.tensor(name).shape(), t.shape()) << name;
      EXPECT_EQ(hf.tensor(name).to_f32(), t.to_f32()) << name;
    }
    EXPECT_EQ(ModelRunner(hf).logits(kCappTokens), ModelRunner(onnx).logits(kCappTokens));
  }
}

TEST(Gpt2HfLoader, RefusesUnsupportedConfigs) {
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}},
                      {"n_embd", 64},
                      {"n_head", 4},
                      {"n_layer", 2},
                      {"activation_function", "relu"}};
  EXPECT_THROW(parse_hf_config(j.dump(), "config.json"), Error);
  j["activation_function"] = "gelu_new";
  j["n_head"] = 5;  // 64 is not a multiple of 5
  EXPECT_THROW(parse_hf_config(j.dump(), "config.json"), Error);
  j["n_head"] = 4;
  j["scale_attn_by_inverse_layer_idx"] = true;
  EXPECT_THROW(parse_hf_config(j.dump(), "config.json"), Error);
  j.erase("scale_attn_by_inverse_layer_idx");
  const Config c = parse_hf_config(j.dump(), "config.json");
  EXPECT_EQ(c.family, "gpt2");
  EXPECT_EQ(c.intermediate_size, 256);  // n_inner omitted: 4 · n_embd
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.max_position, 1024);
  EXPECT_EQ(parse_hf_config(hf_config_json(c, Vocab{}, std::nullopt), "x").hidden_size, 64);
}

TEST(Gpt2Forward, MatchesTheDoublePrecisionReference) {
  const Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  EXPECT_EQ(model.config.norm_kind, NormKind::LayerNorm);
  EXPECT_EQ(model.config.position_kind, PositionKind::Learned);
  EXPECT_EQ(model.config.mlp_kind, MlpKind::GeluTanh);
  const RowMatrix got = ModelRunner(model).logits(kCappTokens);
  const testing::DoubleRows want = testing::reference_logits(model, kCappTokens);
  double range = 0;
  for (const auto& row : want)
    for (double v : row) range = std::max(range, std::abs(v));
  for (size_t t = 0; t < want.size(); ++t)
    for (size_t v = 0; v < want[t].size(); ++v)
      ASSERT_NEAR(got(static_cast<int64_t>(t), static_cast<int64_t>(v)), want[t][v], 1e-5 * range) << t << "," << v;
}

TEST(Gpt2Forward, IncrementalDecodingMatchesWholeWindow) {
  const Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  const ModelRunner runner(model);
  const RowMatrix full = runner.logits(kCappTokens);
  ASSERT_EQ(full.rows(), static_cast<int64_t>(kCappTokens.size()));
  ASSERT_EQ(full.cols(), 53);
  KvCache cache = runner.make_cache(32);
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

// Records the names of the linears an observer sees.
class NameRecorder : public LinearObserver {
 public:
  void on_linear(const LinearActivation& a) override { seen.push_back(std::to_string(a.layer) + ":" + a.weight); }
  std::vector<std::string> seen;
};

TEST(Gpt2Forward, EveryEntryPointRunsTheDescription) {
  const Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  const ModelRunner runner(model);
  EXPECT_EQ(runner.layer_count(), 4);
  const RowMatrix expected = runner.logits(kCappTokens);

  const std::vector<std::vector<int32_t>> windows = {kCappTokens, {1, 2, 3}};
  const auto batch = runner.logits_batch(windows);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0], expected);
  EXPECT_EQ(batch[1], runner.logits(windows[1]));

  // Block level: embed → run_block per layer → final_logits is the whole window.
  RowMatrix hidden = runner.embed(kCappTokens);
  for (int64_t l = 0; l < runner.layer_count(); ++l) runner.run_block(l, hidden);
  EXPECT_EQ(runner.final_logits(hidden), expected);

  // Decoding through a KvCache.
  KvCache cache = runner.make_cache(20);
  const std::span<const int32_t> ids(kCappTokens);
  const RowMatrix head = runner.decode(cache, ids.first(6));
  const RowMatrix tail = runner.decode(cache, ids.subspan(6));
  EXPECT_EQ(cache.size(), static_cast<int64_t>(ids.size()));
  const double range = expected.maxCoeff() - expected.minCoeff();
  EXPECT_LE((expected.topRows(6) - head).cwiseAbs().maxCoeff(), 1e-5 * range);
  EXPECT_LE((expected.bottomRows(tail.rows()) - tail).cwiseAbs().maxCoeff(), 1e-5 * range);
  EXPECT_THROW(runner.decode(cache, ids.first(7)), Error);  // 14 + 7 > 20

  // The observer sees the canonical linears per block (no gate), then the tied head.
  NameRecorder recorder;
  RunOptions options;
  options.observer = &recorder;
  EXPECT_EQ(runner.logits(std::vector<int32_t>{3, 4}, options), runner.logits(std::vector<int32_t>{3, 4}));
  ASSERT_EQ(recorder.seen.size(), 6u * 4u + 1u);
  EXPECT_EQ(recorder.seen[0], "0:" + names::q_proj(0));
  EXPECT_EQ(recorder.seen[3], "0:" + names::o_proj(0));
  EXPECT_EQ(recorder.seen[4], "0:" + names::up_proj(0));
  EXPECT_EQ(recorder.seen[5], "0:" + names::down_proj(0));
  EXPECT_EQ(recorder.seen[24], "-1:" + names::kEmbedTokens);

  // Pruning masks and the per-layer weights work as for any decoder.
  EXPECT_EQ(runner.weights().layers[2].n_heads, 4);
  ForwardMasks masks;
  masks.heads.assign(4, std::vector<float>(4, 1.0f));
  masks.heads[1][2] = 0;
  RunOptions masked;
  masked.masks = &masks;
  EXPECT_GT((runner.logits(kCappTokens, masked) - expected).cwiseAbs().maxCoeff(), 1e-4f);
}

TEST(Gpt2Gguf, RoundTripIsBitExactAndKeepsTheConfig) {
  const Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  ASSERT_EQ(model.vocab.kind, VocabKind::None);
  const std::string path = scratch_dir("gpt2_gguf") + "/capp.gguf";
  write_gguf(model, path);

  // llama.cpp's names, keys and the placeholder vocabulary (the gpt2 row, src/io/families/gpt2.cpp).
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.require_string("general.architecture"), "gpt2");
  EXPECT_EQ(file.require_int("gpt2.context_length"), 512);
  EXPECT_EQ(file.require_int("gpt2.embedding_length"), 64);
  EXPECT_EQ(file.require_int("gpt2.feed_forward_length"), 256);
  EXPECT_EQ(file.require_int("gpt2.block_count"), 4);
  EXPECT_EQ(file.require_int("gpt2.attention.head_count"), 4);
  EXPECT_NEAR(file.require_float("gpt2.attention.layer_norm_epsilon"), 1e-5, 1e-12);
  EXPECT_EQ(file.require_string("tokenizer.ggml.model"), "gpt2");
  std::vector<std::string> gguf_names;
  for (const auto& info : file.tensors()) gguf_names.push_back(info.name);
  for (const char* want : {"token_embd.weight", "position_embd.weight", "output_norm.bias", "blk.0.attn_qkv.weight",
                           "blk.3.attn_qkv.bias", "blk.2.attn_output.weight", "blk.1.ffn_up.weight",
                           "blk.1.ffn_down.bias", "blk.0.attn_norm.bias", "blk.0.ffn_norm.weight"})
    EXPECT_NE(std::find(gguf_names.begin(), gguf_names.end(), want), gguf_names.end()) << want;
  EXPECT_EQ(std::find(gguf_names.begin(), gguf_names.end(), "output.weight"), gguf_names.end());  // tied
  // q/k/v weights and biases (6 IR tensors per block) are 2 fused GGUF tensors.
  EXPECT_EQ(gguf_names.size(), model.tensors().size() - 4 * 4);
  for (const auto& info : file.tensors()) {
    if (info.name == "blk.0.attn_qkv.weight") {
      EXPECT_EQ(info.shape, (std::vector<int64_t>{192, 64}));
    }
  }

  const Model back = load_gguf(path);
  EXPECT_EQ(back.config.family, "gpt2");
  EXPECT_EQ(back.vocab.kind, VocabKind::None);  // the placeholder tokens do not come back as a vocabulary
  const Config& a = model.config;
  const Config& b = back.config;
  EXPECT_EQ(b.hidden_size, a.hidden_size);
  EXPECT_EQ(b.num_layers, a.num_layers);
  EXPECT_EQ(b.num_heads, a.num_heads);
  EXPECT_EQ(b.num_kv_heads, a.num_kv_heads);
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.intermediate_size, a.intermediate_size);
  EXPECT_EQ(b.max_position, a.max_position);
  EXPECT_EQ(b.vocab_size, a.vocab_size);
  EXPECT_EQ(static_cast<float>(b.norm_eps), static_cast<float>(a.norm_eps));
  EXPECT_TRUE(b.tie_word_embeddings);
  ASSERT_EQ(back.tensors().size(), model.tensors().size());
  for (const auto& [name, t] : model.tensors()) {
    ASSERT_TRUE(back.has(name)) << name;
    const Tensor& r = back.tensor(name);
    EXPECT_EQ(r.shape(), t.shape()) << name;
    EXPECT_EQ(r.dtype(), t.dtype()) << name;
    ASSERT_EQ(r.nbytes(), t.nbytes()) << name;
    EXPECT_EQ(std::memcmp(r.data(), t.data(), t.nbytes()), 0) << name;
  }
  EXPECT_EQ(ModelRunner(back).logits(kCappTokens), ModelRunner(model).logits(kCappTokens));
}

TEST(Gpt2Gguf, RefusesAnUntiedHeadAndMissingTensors) {
  Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  const std::string dir = scratch_dir("gpt2_gguf_refuse");
  Model missing = model;
  missing.erase(names::up_bias(2));
  try {
    write_gguf(missing, dir + "/m.gguf");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(names::up_bias(2)), std::string::npos) << e.what();
  }
  Model untied = model;
  untied.config.tie_word_embeddings = false;
  EXPECT_THROW(write_gguf(untied, dir + "/m.gguf"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/m.gguf"));
}

// Rewrites a GPT-2 GGUF with one key dropped or one tensor renamed, and expects load_gguf to name the culprit.
TEST(Gpt2Gguf, LoadRejectsMissingKeysAndStrayTensors) {
  const Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  const std::string dir = scratch_dir("gpt2_gguf_reject");
  write_gguf(model, dir + "/full.gguf");
  const GgufFile f = GgufFile::open(dir + "/full.gguf");
  auto rewrite = [&](const std::string& path, const std::string& drop_key, const std::string& rename_from,
                     const std::string& rename_to) {
    GgufMetadata md;
    for (const auto& [key, value] : f.metadata().entries())
      if (key != drop_key) md.set(key, value);
    std::vector<GgufTensorPlan> plans;
    std::vector<size_t> source;  // plan index → tensor index in f
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const auto& info = f.tensors()[i];
      if (info.name == rename_from && rename_to.empty()) continue;  // dropped
      plans.push_back({info.name == rename_from ? rename_to : info.name, info.shape, info.dtype});
      source.push_back(i);
    }
    write_gguf_file(path, md, plans, [&](size_t i) {
      Tensor t = f.view(f.tensors()[source[i]]);
      t.set_name(plans[i].name);
      return t;
    });
  };
  auto expect_error = [](const std::string& path, ErrorKind kind, const std::string& culprit) {
    try {
      load_gguf(path);
      FAIL() << "expected an error for " << culprit;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
      EXPECT_NE(std::string(e.what()).find(culprit), std::string::npos) << e.what();
    }
  };
  rewrite(dir + "/no_eps.gguf", "gpt2.attention.layer_norm_epsilon", "", "");
  expect_error(dir + "/no_eps.gguf", ErrorKind::BadInput, "gpt2.attention.layer_norm_epsilon");
  rewrite(dir + "/layer9.gguf", "", "blk.3.ffn_up.bias", "blk.9.ffn_up.bias");
  expect_error(dir + "/layer9.gguf", ErrorKind::BadInput, "blk.9.ffn_up.bias");
  rewrite(dir + "/stray.gguf", "", "blk.3.ffn_up.bias", "blk.3.ffn_gate.bias");
  expect_error(dir + "/stray.gguf", ErrorKind::Unsupported, "blk.3.ffn_gate.bias");
  // A file that lacks a tensor: loading names it (canonically).
  rewrite(dir + "/dropped.gguf", "", "blk.3.ffn_up.bias", "");
  expect_error(dir + "/dropped.gguf", ErrorKind::BadInput, names::up_bias(3));
}

TEST(Gpt2Kernels, LayerNormAndGeluMatchTheirDefinitions) {
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
