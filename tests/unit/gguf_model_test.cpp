// Model ↔ GGUF tests on small synthetic models: llama.cpp's names, keys and layouts in the written file, and an
// exact round trip back to the canonical IR for Llama, Mistral and Qwen2 configurations (per-layer head counts,
// head_dim ≠ hidden/heads, RoPE scaling, biases, tied and untied heads), dtype choice and encoder plumbing, and
// the tokenizer keys (scores derived from merges, merges derived from scores).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <random>

#include "slmopt/core/error.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/text/tokenizer.h"
#include "slmopt/core/mapped_file.h"
#include "test_support.h"

namespace slmopt {
namespace {

Tensor random_tensor(const std::string& name, std::vector<int64_t> shape, std::mt19937& rng) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return Tensor::from_f32(name, std::move(shape), v);
}

Vocab sentencepiece_vocab() {
  Vocab v;
  v.kind = VocabKind::SentencePieceBpe;
  v.tokens = {"<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "\xE2\x96\x81", "a", "b", "c",
              "\xE2\x96\x81" "a", "ab", "abc", "\xE2\x96\x81" "ab", "bc"};
  v.merges = {"a b", "\xE2\x96\x81 a", "ab c", "\xE2\x96\x81 ab", "b c"};
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.byte_fallback = true;
  v.add_prefix_space = true;
  v.chat_template = "{{ messages }}";
  return v;
}

Vocab byte_level_vocab(size_t n) {
  Vocab v;
  v.kind = VocabKind::ByteLevelBpe;
  for (size_t i = 0; i + 1 < n; ++i) v.tokens.push_back(fmt::format("t{}", i));
  v.tokens.push_back("<|endoftext|>");
  v.merges = {"t t0", "t1 t2"};
  v.bos_id = v.eos_id = static_cast<int32_t>(n - 1);
  v.types.assign(n, TokenType::Normal);
  v.types.back() = TokenType::Control;
  return v;
}

struct ModelSpec {
  std::string family = "llama";
  std::string architecture = "LlamaForCausalLM";
  int64_t hidden = 64, heads = 4, kv_heads = 2, head_dim = 16, ffn = 96, layers = 2;
  std::vector<int64_t> layer_heads, layer_kv_heads, layer_ffn;
  bool tied = false, attention_bias = false;
  int64_t vocab_rows = 14;
};

Model make_model(const ModelSpec& s, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Model m;
  Config& c = m.config;
  c.family = s.family;
  c.architecture = s.architecture;
  c.name = "synthetic";
  c.hidden_size = s.hidden;
  c.intermediate_size = s.ffn;
  c.num_layers = s.layers;
  c.num_heads = s.heads;
  c.num_kv_heads = s.kv_heads;
  c.head_dim = s.head_dim;
  c.vocab_size = s.vocab_rows;
  c.max_position = 128;
  c.norm_eps = 1e-6;
  c.rope_theta = 500000.0;
  c.tie_word_embeddings = s.tied;
  c.attention_bias = s.attention_bias;
  c.layer_num_heads = s.layer_heads;
  c.layer_num_kv_heads = s.layer_kv_heads;
  c.layer_intermediate_size = s.layer_ffn;
  m.set(random_tensor(names::kEmbedTokens, {s.vocab_rows, s.hidden}, rng));
  m.set(random_tensor(names::kFinalNorm, {s.hidden}, rng));
  if (!s.tied) m.set(random_tensor(names::kLmHead, {s.vocab_rows, s.hidden}, rng));
  for (int64_t l = 0; l < s.layers; ++l) {
    const int64_t nh = c.heads(l), nkv = c.kv_heads(l), ff = c.ffn(l);
    m.set(random_tensor(names::attn_norm(l), {s.hidden}, rng));
    m.set(random_tensor(names::ffn_norm(l), {s.hidden}, rng));
    m.set(random_tensor(names::q_proj(l), {nh * s.head_dim, s.hidden}, rng));
    m.set(random_tensor(names::k_proj(l), {nkv * s.head_dim, s.hidden}, rng));
    m.set(random_tensor(names::v_proj(l), {nkv * s.head_dim, s.hidden}, rng));
    m.set(random_tensor(names::o_proj(l), {s.hidden, nh * s.head_dim}, rng));
    m.set(random_tensor(names::gate_proj(l), {ff, s.hidden}, rng));
    m.set(random_tensor(names::up_proj(l), {ff, s.hidden}, rng));
    m.set(random_tensor(names::down_proj(l), {s.hidden, ff}, rng));
    if (s.attention_bias) {
      m.set(random_tensor(names::q_bias(l), {nh * s.head_dim}, rng));
      m.set(random_tensor(names::k_bias(l), {nkv * s.head_dim}, rng));
      m.set(random_tensor(names::v_bias(l), {nkv * s.head_dim}, rng));
    }
  }
  m.vocab = sentencepiece_vocab();
  return m;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

void expect_same_tensors(const Model& expected, const Model& actual) {
  EXPECT_EQ(expected.tensors().size(), actual.tensors().size());
  for (const auto& [name, t] : expected.tensors()) {
    const Tensor* got = actual.find(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_TRUE(same_bytes(t, *got)) << name;
  }
}

void expect_same_config(const Config& a, const Config& b) {
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_position, b.max_position);
  EXPECT_FLOAT_EQ(static_cast<float>(a.norm_eps), static_cast<float>(b.norm_eps));
  EXPECT_FLOAT_EQ(static_cast<float>(a.rope_theta), static_cast<float>(b.rope_theta));
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_FLOAT_EQ(static_cast<float>(a.rope_scaling.factor), static_cast<float>(b.rope_scaling.factor));
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.layer_num_heads, b.layer_num_heads);
  EXPECT_EQ(a.layer_num_kv_heads, b.layer_num_kv_heads);
  EXPECT_EQ(a.layer_intermediate_size, b.layer_intermediate_size);
}

std::vector<float> row(const Tensor& t, int64_t r) {
  std::vector<float> out(static_cast<size_t>(t.cols()));
  t.rows_to_f32(r, r + 1, out.data());
  return out;
}

std::string scratch_file(const std::string& test, const std::string& file) {
  return testing::scratch_dir(test) + "/" + file;
}

TEST(GgufModel, LlamaFileHasLlamaCppNamesKeysAndLayout) {
  const Model model = make_model({});
  const std::string path = scratch_file("gguf_llama_layout", "m.gguf");
  write_gguf(model, path);
  const GgufFile f = GgufFile::open(path);

  EXPECT_EQ(f.require_string("general.architecture"), "llama");
  EXPECT_EQ(f.require_string("general.name"), "synthetic");
  EXPECT_EQ(f.require_int("general.alignment"), 32);
  EXPECT_EQ(f.require_int("general.file_type"), 0);
  EXPECT_FALSE(f.metadata().has("general.quantization_version"));
  EXPECT_EQ(f.require_int("llama.context_length"), 128);
  EXPECT_EQ(f.require_int("llama.embedding_length"), 64);
  EXPECT_EQ(f.require_int("llama.block_count"), 2);
  EXPECT_EQ(f.require_int("llama.feed_forward_length"), 96);
  EXPECT_EQ(f.require_int("llama.rope.dimension_count"), 16);
  EXPECT_EQ(f.require_int("llama.attention.head_count"), 4);
  EXPECT_EQ(f.require_int("llama.attention.head_count_kv"), 2);
  EXPECT_FALSE(f.metadata().has("llama.attention.key_length"));  // 16 = 64 / 4
  EXPECT_FLOAT_EQ(static_cast<float>(f.require_float("llama.attention.layer_norm_rms_epsilon")), 1e-6f);
  EXPECT_FLOAT_EQ(static_cast<float>(f.require_float("llama.rope.freq_base")), 500000.0f);
  EXPECT_EQ(f.require_int("llama.vocab_size"), 14);
  EXPECT_EQ(f.metadata().find("llama.attention.layer_norm_rms_epsilon")->type(), GgufType::F32);
  EXPECT_EQ(f.metadata().find("llama.block_count")->type(), GgufType::U32);

  std::vector<std::string> names;
  for (const auto& info : f.tensors()) names.push_back(info.name);
  // The IR's stable order (embedding, layers by canonical name, final norm, head), renamed.
  const std::vector<std::string> expected = {
      "token_embd.weight",     "blk.0.attn_norm.weight", "blk.0.ffn_down.weight",    "blk.0.ffn_gate.weight",
      "blk.0.ffn_up.weight",   "blk.0.ffn_norm.weight",  "blk.0.attn_k.weight",      "blk.0.attn_output.weight",
      "blk.0.attn_q.weight",   "blk.0.attn_v.weight",    "blk.1.attn_norm.weight",   "blk.1.ffn_down.weight",
      "blk.1.ffn_gate.weight", "blk.1.ffn_up.weight",    "blk.1.ffn_norm.weight",    "blk.1.attn_k.weight",
      "blk.1.attn_output.weight", "blk.1.attn_q.weight", "blk.1.attn_v.weight",      "output_norm.weight",
      "output.weight"};
  EXPECT_EQ(names, expected);

  // The container reader reverses ggml dims back to PyTorch order: same shapes as the IR.
  EXPECT_EQ(f.find_tensor("blk.0.ffn_gate.weight")->shape, (std::vector<int64_t>{96, 64}));
  // Down and V are stored unchanged; Q and K rows are regrouped per head: GGUF row h·hd + 2j + s holds
  // Hugging Face row h·hd + s·hd/2 + j.
  EXPECT_TRUE(same_bytes(f.view("blk.1.attn_v.weight"), model.tensor(names::v_proj(1))));
  const Tensor q = f.view("blk.1.attn_q.weight"), k = f.view("blk.1.attn_k.weight");
  const Tensor& hf_q = model.tensor(names::q_proj(1));
  const Tensor& hf_k = model.tensor(names::k_proj(1));
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t j = 0; j < 8; ++j)
      for (int64_t s = 0; s < 2; ++s) {
        EXPECT_EQ(row(q, h * 16 + 2 * j + s), row(hf_q, h * 16 + s * 8 + j));
        if (h < 2) {
          EXPECT_EQ(row(k, h * 16 + 2 * j + s), row(hf_k, h * 16 + s * 8 + j));
        }
      }
}

TEST(GgufModel, LlamaRoundTripIsExact) {
  const Model model = make_model({});
  const std::string path = scratch_file("gguf_llama_roundtrip", "m.gguf");
  write_gguf(model, path);
  // Deterministic output: the same model gives the same bytes.
  write_gguf(model, path + ".again");
  EXPECT_EQ(read_text_file(path), read_text_file(path + ".again"));
  const Model loaded = load_gguf(path);
  EXPECT_EQ(loaded.source_format, "gguf");
  expect_same_config(model.config, loaded.config);
  expect_same_tensors(model, loaded);
  // Tensors that need no regrouping are views into the file, not copies.
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(loaded.tensor(names::v_proj(0)).nbytes(), f.find_tensor("blk.0.attn_v.weight")->nbytes);
}

TEST(GgufModel, TiedEmbeddingsOmitOutput) {
  ModelSpec spec;
  spec.tied = true;
  const Model model = make_model(spec);
  const std::string path = scratch_file("gguf_tied", "m.gguf");
  write_gguf(model, path);
  EXPECT_EQ(GgufFile::open(path).find_tensor("output.weight"), nullptr);
  const Model loaded = load_gguf(path);
  EXPECT_TRUE(loaded.config.tie_word_embeddings);
  EXPECT_FALSE(loaded.has(names::kLmHead));
  expect_same_tensors(model, loaded);
}

TEST(GgufModel, Qwen2KeepsRowsAndBiases) {
  ModelSpec spec;
  spec.family = "qwen2";
  spec.architecture = "Qwen2ForCausalLM";
  spec.attention_bias = true;
  spec.tied = true;
  Model model = make_model(spec);
  model.vocab = byte_level_vocab(14);
  const std::string path = scratch_file("gguf_qwen2", "m.gguf");
  write_gguf(model, path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.require_string("general.architecture"), "qwen2");
  EXPECT_EQ(f.require_int("qwen2.attention.head_count"), 4);
  EXPECT_FALSE(f.metadata().has("llama.block_count"));
  // llama.cpp runs qwen2 with NEOX RoPE, the Hugging Face layout: no regrouping.
  EXPECT_TRUE(same_bytes(f.view("blk.0.attn_q.weight"), model.tensor(names::q_proj(0))));
  EXPECT_TRUE(same_bytes(f.view("blk.0.attn_k.bias"), model.tensor(names::k_bias(0))));
  EXPECT_EQ(f.find_tensor("blk.1.attn_q.bias")->dtype, DType::F32);
  const Model loaded = load_gguf(path);
  expect_same_config(model.config, loaded.config);
  expect_same_tensors(model, loaded);
}

TEST(GgufModel, LlamaBiasesAreRegroupedLikeTheirWeights) {
  ModelSpec spec;
  spec.attention_bias = true;
  const Model model = make_model(spec);
  const std::string path = scratch_file("gguf_llama_bias", "m.gguf");
  write_gguf(model, path);
  const std::vector<float> gguf_bias = GgufFile::open(path).view("blk.0.attn_q.bias").to_f32();
  const std::vector<float> hf_bias = model.tensor(names::q_bias(0)).to_f32();
  EXPECT_EQ(gguf_bias[1], hf_bias[8]);   // head 0, j 0, s 1
  EXPECT_EQ(gguf_bias[2], hf_bias[1]);   // head 0, j 1, s 0
  EXPECT_EQ(gguf_bias[17], hf_bias[24]);  // head 1, j 0, s 1
  expect_same_tensors(model, load_gguf(path));
}

TEST(GgufModel, MistralIsWrittenAsLlamaAndLoadsBackAsMistral) {
  ModelSpec spec;
  spec.family = "mistral";
  spec.architecture = "MistralForCausalLM";
  const Model model = make_model(spec);
  const std::string path = scratch_file("gguf_mistral", "m.gguf");
  write_gguf(model, path);
  EXPECT_EQ(GgufFile::open(path).require_string("general.architecture"), "llama");
  const Model loaded = load_gguf(path);
  EXPECT_EQ(loaded.config.family, "mistral");
  EXPECT_EQ(loaded.config.architecture, "MistralForCausalLM");
  expect_same_tensors(model, loaded);
}

TEST(GgufModel, PerLayerCountsAreWrittenAsDeciArrays) {
  ModelSpec spec;
  spec.layers = 3;
  spec.head_dim = 8;  // ≠ 64 / 4
  spec.layer_heads = {4, 2, 4};
  spec.layer_kv_heads = {2, 1, 2};
  spec.layer_ffn = {96, 64, 32};
  const Model model = make_model(spec);
  const std::string path = scratch_file("gguf_per_layer", "m.gguf");
  write_gguf(model, path);
  const GgufFile f = GgufFile::open(path);
  // llama.cpp's "llama" graph sizes every layer like layer 0; its "deci" graph follows the arrays.
  EXPECT_EQ(f.require_string("general.architecture"), "deci");
  const auto* heads = f.get_array("deci.attention.head_count", GgufType::I32);
  ASSERT_NE(heads, nullptr);
  EXPECT_EQ(heads->size(), 3u);
  EXPECT_EQ((*heads)[1].to_int(), 2);
  EXPECT_EQ((*f.get_array("deci.attention.head_count_kv", GgufType::I32))[1].to_int(), 1);
  EXPECT_EQ((*f.get_array("deci.feed_forward_length", GgufType::I32))[2].to_int(), 32);
  EXPECT_EQ(f.require_int("deci.attention.key_length"), 8);
  EXPECT_EQ(f.require_int("deci.attention.value_length"), 8);
  // Rows are regrouped as for "llama": GGUF row 1 of layer 1's Q (head 0, j 0, s 1) is Hugging Face row 4.
  EXPECT_EQ(row(f.view("blk.1.attn_q.weight"), 1), row(model.tensor(names::q_proj(1)), 4));
  const Model loaded = load_gguf(path);
  expect_same_config(model.config, loaded.config);
  expect_same_tensors(model, loaded);

  // A uniform config with an explicit head_dim stays "llama", with key_length.
  ModelSpec wide;
  wide.head_dim = 32;
  // Another file: `loaded` still maps the first, and slmopt refuses to replace a file it is reading.
  const std::string wide_path = scratch_file("gguf_per_layer", "wide.gguf");
  write_gguf(make_model(wide), wide_path);
  const GgufFile g = GgufFile::open(wide_path);
  EXPECT_EQ(g.require_string("general.architecture"), "llama");
  EXPECT_EQ(g.require_int("llama.attention.key_length"), 32);
  EXPECT_EQ(g.metadata().find("llama.attention.head_count")->type(), GgufType::U32);
}

TEST(GgufModel, Qwen2WithPerLayerCountsLoadsBackAsQwen2) {
  ModelSpec spec;
  spec.family = "qwen2";
  spec.architecture = "Qwen2ForCausalLM";
  spec.attention_bias = true;
  spec.layer_heads = {4, 2};
  spec.layer_kv_heads = {2, 1};
  const Model model = make_model(spec);
  const std::string path = scratch_file("gguf_qwen2_per_layer", "m.gguf");
  write_gguf(model, path);
  EXPECT_EQ(GgufFile::open(path).require_string("general.architecture"), "deci");
  const Model loaded = load_gguf(path);
  EXPECT_EQ(loaded.config.family, "qwen2");
  expect_same_config(model.config, loaded.config);
  expect_same_tensors(model, loaded);
}

TEST(GgufModel, LinearRopeScalingRoundTrips) {
  Model model = make_model({});
  model.config.rope_scaling.type = RopeScalingType::Linear;
  model.config.rope_scaling.factor = 4.0;
  const std::string path = scratch_file("gguf_rope_linear", "m.gguf");
  write_gguf(model, path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.require_string("llama.rope.scaling.type"), "linear");
  EXPECT_FLOAT_EQ(static_cast<float>(f.require_float("llama.rope.scaling.factor")), 4.0f);
  expect_same_config(model.config, load_gguf(path).config);
}

TEST(GgufModel, Llama3RopeScalingBecomesARopeFreqsTensor) {
  ModelSpec spec;
  spec.head_dim = 64;
  spec.heads = 1;
  spec.kv_heads = 1;
  Model model = make_model(spec);
  model.config.rope_theta = 500000.0;
  auto& r = model.config.rope_scaling;
  r.type = RopeScalingType::Llama3;
  r.factor = 8.0;
  r.low_freq_factor = 1.0;
  r.high_freq_factor = 4.0;
  r.original_max_position = 8192;
  const std::string path = scratch_file("gguf_rope_llama3", "m.gguf");
  write_gguf(model, path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_FALSE(f.metadata().has("llama.rope.scaling.type"));  // llama.cpp asserts on names it does not know
  const std::vector<float> factors = f.view("rope_freqs.weight").to_f32();
  ASSERT_EQ(factors.size(), 32u);
  // Independent evaluation of the Llama-3 rule for a high-, a low- and a mid-frequency pair.
  auto expected = [&](int i) {
    const double freq = std::pow(500000.0, -2.0 * i / 64.0), wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < 8192.0 / 4.0) return 1.0;
    if (wavelen > 8192.0) return 8.0;
    const double smooth = (8192.0 / wavelen - 1.0) / 3.0;
    return 1.0 / ((1.0 - smooth) / 8.0 + smooth);
  };
  EXPECT_EQ(factors[0], 1.0f);
  EXPECT_EQ(factors[31], 8.0f);
  int smooth_points = 0;
  for (int i = 0; i < 32; ++i) {
    EXPECT_NEAR(factors[static_cast<size_t>(i)], expected(i), 1e-5 * expected(i)) << i;
    smooth_points += factors[static_cast<size_t>(i)] > 1.0f && factors[static_cast<size_t>(i)] < 8.0f;
  }
  EXPECT_GE(smooth_points, 2);
  const Model loaded = load_gguf(path);
  EXPECT_FALSE(loaded.has("rope_freqs.weight"));
  EXPECT_EQ(loaded.config.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_DOUBLE_EQ(loaded.config.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(loaded.config.rope_scaling.original_max_position, 8192);

  // A file from another converter has the tensor but not slmopt's keys: the parameters are fitted from it.
  GgufMetadata md;
  for (const auto& [key, value] : f.metadata().entries())
    if (key.rfind("slmopt.rope", 0) != 0) md.set(key, value);
  std::vector<GgufTensorPlan> plans;
  for (const auto& info : f.tensors()) plans.push_back({info.name, info.shape, info.dtype});
  const std::string foreign = scratch_file("gguf_rope_llama3_foreign", "m.gguf");
  write_gguf_file(foreign, md, plans, [&](size_t i) { return f.view(f.tensors()[i]); });
  const Config fitted = load_gguf(foreign).config;
  EXPECT_EQ(fitted.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_NEAR(fitted.rope_scaling.factor, 8.0, 1e-5);
  EXPECT_NEAR(fitted.rope_scaling.low_freq_factor, 1.0, 1e-9);
  EXPECT_NEAR(fitted.rope_scaling.high_freq_factor, 4.0, 1e-3);
  EXPECT_NEAR(static_cast<double>(fitted.rope_scaling.original_max_position), 8192.0, 1.0);
}

TEST(GgufModel, DtypeChoiceKeepsNormsInF32AndSetsTheFileType) {
  for (DType dtype : {DType::F16, DType::BF16}) {
    const Model model = make_model({});
    const std::string path = scratch_file("gguf_dtype", "m.gguf");
    GgufWriteOptions options;
    options.choose_dtype = [&](const std::string&, const Tensor&) { return dtype; };
    write_gguf(model, path, options);
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.require_int("general.file_type"), static_cast<int64_t>(llama_file_type_for(dtype)));
    EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->dtype, dtype);
    EXPECT_EQ(f.find_tensor("token_embd.weight")->dtype, dtype);
    EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->dtype, DType::F32);
    EXPECT_EQ(f.find_tensor("output_norm.weight")->dtype, DType::F32);
    const Model loaded = load_gguf(path);
    for (const auto& [name, t] : model.tensors()) {
      const Tensor& got = loaded.tensor(name);
      if (t.rank() == 1) {
        EXPECT_TRUE(same_bytes(t, got)) << name;
      } else {
        const Tensor expected = Tensor::from_f32_as(name, t.shape(), t.to_f32(), dtype);
        EXPECT_TRUE(same_bytes(expected, got)) << name;
      }
    }
  }
  EXPECT_EQ(static_cast<int>(llama_file_type_for(DType::Q8_0)), 7);
  EXPECT_EQ(static_cast<int>(llama_file_type_for(DType::Q4_K)), 15);
  EXPECT_EQ(static_cast<int>(llama_file_type_for(DType::BF16)), 32);
}

TEST(GgufModel, QuantizedTensorsGoThroughTheEncoderOneAtATime) {
  const Model model = make_model({});
  const std::string path = scratch_file("gguf_q8_0", "m.gguf");
  GgufWriteOptions options;
  options.choose_dtype = [](const std::string&, const Tensor&) { return DType::Q8_0; };
  std::vector<std::string> encoded;
  options.encode = [&](const Tensor& t, DType dtype) {
    EXPECT_EQ(dtype, DType::Q8_0);
    encoded.push_back(t.name());
    const Tensor q = quantize_tensor(t, dtype, nullptr, Encoder::Reference);
    return std::vector<uint8_t>(q.data(), q.data() + q.nbytes());
  };
  write_gguf(model, path, options);
  EXPECT_EQ(encoded.size(), 2u + 2u * 7u);  // embedding, head, 7 matrices per layer
  EXPECT_EQ(encoded.front(), names::kEmbedTokens);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.require_int("general.file_type"), 7);
  EXPECT_EQ(f.require_int("general.quantization_version"), 2);
  const Model loaded = load_gguf(path);
  const Tensor& q = loaded.tensor(names::q_proj(0));
  EXPECT_EQ(q.dtype(), DType::Q8_0);
  // The encoder saw rows in GGUF order; loading regroups them back, so values match the original closely.
  const std::vector<float> original = model.tensor(names::q_proj(0)).to_f32(), decoded = q.to_f32();
  float max_abs = 0, max_err = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    max_abs = std::max(max_abs, std::abs(original[i]));
    max_err = std::max(max_err, std::abs(original[i] - decoded[i]));
  }
  EXPECT_LT(max_err, max_abs / 127.0f);

  GgufWriteOptions no_encoder;
  no_encoder.choose_dtype = options.choose_dtype;
  try {
    write_gguf(model, scratch_file("gguf_no_encoder", "m.gguf"), no_encoder);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("model.embed_tokens.weight"), std::string::npos) << e.what();
  }
}

TEST(GgufModel, SentencePieceScoresFollowTheMergeRanks) {
  const Model model = make_model({});
  const std::string path = scratch_file("gguf_sp_vocab", "m.gguf");
  write_gguf(model, path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.require_string("tokenizer.ggml.model"), "llama");
  const auto& scores = *f.get_array("tokenizer.ggml.scores", GgufType::F32);
  auto score = [&](size_t id) { return static_cast<float>(*scores[id].to_float()); };
  // Merges: "a b"→ab (rank 0), "▁ a"→▁a (1), "ab c"→abc (2), "▁ ab"→▁ab (3), "b c"→bc (4).
  EXPECT_EQ(score(10), -1.0f);
  EXPECT_EQ(score(9), -2.0f);
  EXPECT_EQ(score(11), -3.0f);
  EXPECT_EQ(score(12), -4.0f);
  EXPECT_EQ(score(13), -5.0f);
  EXPECT_EQ(score(3), 0.0f);   // byte token
  EXPECT_EQ(score(6), 0.0f);   // single character
  EXPECT_EQ(score(1), -6.0f);  // "<s>": no merge makes it
  const auto& types = *f.get_array("tokenizer.ggml.token_type", GgufType::I32);
  EXPECT_EQ(types[0].to_int(), 2);  // unknown
  EXPECT_EQ(types[1].to_int(), 3);  // control
  EXPECT_EQ(types[3].to_int(), 6);  // byte
  EXPECT_EQ(types[6].to_int(), 1);  // normal
  EXPECT_EQ(f.require_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f.require_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f.require_int("tokenizer.ggml.unknown_token_id"), 0);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_space_prefix"), true);
  EXPECT_EQ(f.require_string("tokenizer.chat_template"), "{{ messages }}");

  const Vocab v = load_gguf(path).vocab;
  EXPECT_EQ(v.kind, VocabKind::SentencePieceBpe);
  EXPECT_EQ(v.tokens, model.vocab.tokens);
  EXPECT_EQ(v.merges, model.vocab.merges);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_TRUE(v.byte_fallback);
  EXPECT_TRUE(v.add_prefix_space);
  EXPECT_EQ(v.chat_template, "{{ messages }}");
}

TEST(GgufModel, MergesAreDerivedFromScoresWhenAFileHasNone) {
  Model model = make_model({});
  model.vocab.merges.clear();
  // SentencePiece-style scores: "ab" first, then "▁a", then "bc", then "abc".
  model.vocab.scores = {0, 0, 0, 0, 0, 0, -1, -1, -1, -3, -2, -5, -6, -4};
  const std::string path = scratch_file("gguf_sp_scores", "m.gguf");
  write_gguf(model, path);
  EXPECT_FALSE(GgufFile::open(path).metadata().has("tokenizer.ggml.merges"));
  // The vocabulary loads with scores only, as in the file; text/ derives the merges it needs.
  const Vocab v = load_gguf(path).vocab;
  EXPECT_EQ(v.scores, model.vocab.scores);
  EXPECT_TRUE(v.merges.empty());
  // By score, then (for splits of one token) by the left piece's id.
  const std::vector<std::string> expected = {"a b", "\xE2\x96\x81 a", "b c", "a bc", "ab c", "\xE2\x96\x81 ab",
                                             "\xE2\x96\x81" "a b"};
  EXPECT_EQ(merges_from_scores(v), expected);
}

TEST(GgufModel, ByteLevelVocabularyKeepsMergesAndPreTokenizer) {
  Model model = make_model({});
  model.vocab = byte_level_vocab(12);  // two rows short of the embedding: padded
  model.vocab.split_regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  model.vocab.ignore_merges = true;
  const std::string path = scratch_file("gguf_bpe_vocab", "m.gguf");
  write_gguf(model, path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.require_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.require_string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_FALSE(f.metadata().has("tokenizer.ggml.scores"));
  const auto& tokens = *f.get_array("tokenizer.ggml.tokens", GgufType::String);
  ASSERT_EQ(tokens.size(), 14u);
  EXPECT_EQ(*tokens[13].to_string(), "[PAD13]");
  EXPECT_EQ((*f.get_array("tokenizer.ggml.token_type", GgufType::I32))[13].to_int(), 5);
  EXPECT_EQ(f.get_array("tokenizer.ggml.merges", GgufType::String)->size(), 2u);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_bos_token"), false);

  const Vocab v = load_gguf(path).vocab;
  EXPECT_EQ(v.kind, VocabKind::ByteLevelBpe);
  EXPECT_EQ(v.merges, model.vocab.merges);
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_EQ(effective_split_regex(v), model.vocab.split_regex);  // named by "llama-bpe"
  EXPECT_TRUE(v.ignore_merges);
  EXPECT_EQ(v.eos_id, 11);
  EXPECT_EQ(v.types[11], TokenType::Control);

  model.vocab = byte_level_vocab(14);
  // Another file: `v` may still map the first, and slmopt refuses to replace a file it is reading.
  const std::string gpt2_path = scratch_file("gguf_bpe_vocab", "gpt2.gguf");
  write_gguf(model, gpt2_path);
  EXPECT_EQ(GgufFile::open(gpt2_path).require_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(load_gguf(gpt2_path).vocab.split_regex, "");
}

// The bundled Hugging Face models through GGUF and back: F32 output decodes to the same floats bit for bit,
// output in the source dtype holds the same bytes, and slmopt's tokenizer built from the GGUF vocabulary gives
// the same ids as the one built from tokenizer.json.
TEST(GgufModel, BundledModelsRoundTripBitForBit) {
  for (const std::string name : {"tinystories-656k", "llama-5m-kjv"}) {
    SCOPED_TRACE(name);
    const Model hf = load_model(testing::model_path(name));
    const std::string dir = testing::scratch_dir("gguf_bundled_" + name);
    GgufWriteOptions f32;
    f32.choose_dtype = [](const std::string&, const Tensor&) { return DType::F32; };
    write_gguf(hf, dir + "/f32.gguf", f32);
    const Model back = load_model(dir + "/f32.gguf");  // the .gguf branch of load_model
    expect_same_config(hf.config, back.config);
    ASSERT_EQ(back.tensors().size(), hf.tensors().size());
    for (const auto& [tensor_name, t] : hf.tensors()) {
      const Tensor& got = back.tensor(tensor_name);
      EXPECT_EQ(got.dtype(), DType::F32) << tensor_name;
      const std::vector<float> a = t.to_f32(), b = got.to_f32();
      ASSERT_EQ(a.size(), b.size()) << tensor_name;
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << tensor_name;
    }

    // In the source dtype, matrices keep their bytes; norms become F32 (as llama.cpp wants) with the same values.
    write_gguf(hf, dir + "/native.gguf");
    const Model native = load_gguf(dir + "/native.gguf");
    for (const auto& [tensor_name, t] : hf.tensors()) {
      const Tensor& got = native.tensor(tensor_name);
      if (t.rank() >= 2) {
        EXPECT_TRUE(same_bytes(t, got)) << tensor_name;
      } else {
        EXPECT_EQ(got.dtype(), DType::F32);
        EXPECT_EQ(t.to_f32(), got.to_f32()) << tensor_name;
      }
    }

    const std::string text = read_text_file(
        testing::data_path(name == "llama-5m-kjv" ? "kjv-eval.txt" : "tinystories-eval.txt")).substr(0, 40000);
    const Tokenizer from_hf(hf.vocab), from_gguf(back.vocab);
    EXPECT_EQ(from_gguf.encode(text, true), from_hf.encode(text, true));
    EXPECT_EQ(back.vocab.tokens, hf.vocab.tokens);
    EXPECT_EQ(back.vocab.merges, hf.vocab.merges);
    EXPECT_EQ(back.vocab.bos_id, hf.vocab.bos_id);
    EXPECT_EQ(back.vocab.eos_id, hf.vocab.eos_id);
    EXPECT_EQ(back.vocab.add_bos, hf.vocab.add_bos);
  }
}

TEST(GgufModel, RefusesWhatLlamaCppCannotLoad) {
  Model model = make_model({});
  model.config.family = "gpt2";
  try {
    write_gguf(model, scratch_file("gguf_refuse", "m.gguf"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  }
  Model extra = make_model({});
  std::mt19937 rng(3);
  extra.set(random_tensor("model.layers.0.mlp.experts.0.weight", {4, 4}, rng));
  try {
    write_gguf(extra, scratch_file("gguf_refuse", "m.gguf"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.experts.0.weight"), std::string::npos);
  }
}

TEST(GgufModel, LoadRejectsFilesThatAreNotLlamaModels) {
  const std::string dir = testing::scratch_dir("gguf_load_reject");
  GgufMetadata md;
  md.set("general.architecture", GgufValue::string("mamba"));
  write_gguf_file(dir + "/mamba.gguf", md, {}, nullptr);
  try {
    load_gguf(dir + "/mamba.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("mamba"), std::string::npos);
  }
  // A llama file missing a required key names the key.
  const Model model = make_model({});
  write_gguf(model, dir + "/full.gguf");
  const GgufFile f = GgufFile::open(dir + "/full.gguf");
  GgufMetadata partial;
  for (const auto& [key, value] : f.metadata().entries())
    if (key != "llama.attention.layer_norm_rms_epsilon") partial.set(key, value);
  std::vector<GgufTensorPlan> plans;
  for (const auto& info : f.tensors()) plans.push_back({info.name, info.shape, info.dtype});
  write_gguf_file(dir + "/partial.gguf", partial, plans, [&](size_t i) { return f.view(f.tensors()[i]); });
  try {
    load_gguf(dir + "/partial.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("llama.attention.layer_norm_rms_epsilon"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("partial.gguf"), std::string::npos);
  }
  // A tensor missing from the file is named by validation.
  std::vector<GgufTensorPlan> fewer;
  std::vector<size_t> kept;
  for (size_t i = 0; i < f.tensors().size(); ++i)
    if (f.tensors()[i].name != "blk.1.ffn_up.weight") fewer.push_back(plans[i]), kept.push_back(i);
  write_gguf_file(dir + "/missing.gguf", f.metadata(), fewer, [&](size_t i) { return f.view(f.tensors()[kept[i]]); });
  try {
    load_gguf(dir + "/missing.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
  }
  // A header that claims the most layers a description may have (4,096) over a 2-layer file's tensors: refused at
  // the first tensor the file lacks, the first of layer 2 (the check stops there instead of listing ~60,000).
  GgufMetadata tall;
  for (const auto& [key, value] : f.metadata().entries()) tall.set(key, value);
  tall.set("llama.block_count", GgufValue::u32(4096));
  write_gguf_file(dir + "/tall.gguf", tall, plans, [&](size_t i) { return f.view(f.tensors()[i]); });
  try {
    load_gguf(dir + "/tall.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("tensor '" + names::attn_norm(2) + "' is missing"), std::string::npos)
        << e.what();
  }
  // A tensor llama.cpp knows but this description does not use (a learned position table in a RoPE model) is
  // refused by the name the file gives it, not silently ignored.
  std::vector<GgufTensorPlan> extra = plans;
  const int64_t hidden = f.find_tensor("token_embd.weight")->shape.at(1);
  const std::vector<float> zeros(static_cast<size_t>(16 * hidden), 0.0f);
  const Tensor positions = Tensor::from_f32("position_embd.weight", {16, hidden}, zeros);
  extra.push_back({positions.name(), positions.shape(), positions.dtype()});
  write_gguf_file(dir + "/extra.gguf", f.metadata(), extra,
                  [&](size_t i) { return i < plans.size() ? f.view(f.tensors()[i]) : positions; });
  try {
    load_gguf(dir + "/extra.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("tensor 'position_embd.weight' is not part of the llama graph"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace slmopt
