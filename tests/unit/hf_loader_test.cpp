// Hugging Face folders: config.json parsing and validation, the bundled models (config values, dtypes, tie
// handling, zero-copy views), crafted folders (aliases, buffers, misnamed tensors, shards), the writer (bit-exact
// round trips, float conversion, sharding, refusals, atomic replacement) and load_model's dispatch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"
#include "expect_helpers.h"
#include "test_support.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;
using slmopt::testing::model_path;
using slmopt::testing::expect_error;
using slmopt::testing::scratch_dir;

// ---- config.json ----------------------------------------------------------------------------------------------

nlohmann::json base_config() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64},      {"intermediate_size", 128},
          {"num_hidden_layers", 2},               {"num_attention_heads", 4}, {"vocab_size", 100}};
}

Config parse(const nlohmann::json& j) { return parse_hf_config(j.dump(), "dir/config.json"); }

void expect_config_error(const nlohmann::json& j, ErrorKind kind, std::vector<std::string> needles) {
  needles.push_back("dir/config.json");
  expect_error([&] { parse(j); }, kind, needles);
}

TEST(HfConfig, AppliesDefaults) {
  const Config c = parse(base_config());
  EXPECT_EQ(c.family, "llama");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.num_kv_heads, 4);   // = heads
  EXPECT_EQ(c.head_dim, 16);      // = hidden / heads
  EXPECT_EQ(c.max_position, 2048);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::None);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  nlohmann::json nulls = base_config();
  nulls["num_key_value_heads"] = nullptr;
  nulls["rope_scaling"] = nullptr;
  EXPECT_EQ(parse(nulls).num_kv_heads, 4);
}

TEST(HfConfig, ReadsFamiliesAndBiases) {
  nlohmann::json j = base_config();
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  Config c = parse(j);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.attention_out_bias);  // Llama's attention_bias covers o_proj too
  EXPECT_TRUE(c.mlp_bias);

  j = base_config();
  j["architectures"] = {"Qwen2ForCausalLM"};
  c = parse(j);
  EXPECT_EQ(c.family, "qwen2");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_EQ(c.max_position, 32768);

  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = 4096;
  j["head_dim"] = 32;
  j["num_key_value_heads"] = 2;
  c = parse(j);
  EXPECT_EQ(c.family, "mistral");
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_FALSE(c.attention_bias);

  j = base_config();
  j.erase("architectures");
  j["model_type"] = "qwen2";
  c = parse(j);
  EXPECT_EQ(c.family, "qwen2");
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
}

TEST(HfConfig, ReadsRopeScaling) {
  nlohmann::json j = base_config();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  Config c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Linear);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 4.0);

  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  j["rope_theta"] = 500000.0;
  c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position, 8192);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);

  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(parse(j).rope_scaling.type, RopeScalingType::None);

  // transformers 5 style: theta and scaling in rope_parameters.
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 1e6}};
  c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Linear);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
}

TEST(HfConfig, RefusesBadFieldsNamingThem) {
  auto with = [](const char* field, nlohmann::json value) {
    nlohmann::json j = base_config();
    if (value.is_discarded()) j.erase(field);
    else j[field] = value;
    return j;
  };
  const nlohmann::json gone(nlohmann::json::value_t::discarded);
  expect_config_error(with("hidden_size", gone), ErrorKind::BadInput, {"hidden_size is missing"});
  expect_config_error(with("vocab_size", gone), ErrorKind::BadInput, {"vocab_size is missing"});
  expect_config_error(with("num_hidden_layers", gone), ErrorKind::BadInput, {"num_hidden_layers is missing"});
  expect_config_error(with("num_attention_heads", 0), ErrorKind::BadInput, {"num_attention_heads must be positive"});
  expect_config_error(with("num_key_value_heads", 0), ErrorKind::BadInput, {"num_key_value_heads must be positive"});
  expect_config_error(with("hidden_size", "64"), ErrorKind::BadInput, {"hidden_size must be an integer"});
  expect_config_error(with("hidden_size", 64.5), ErrorKind::BadInput, {"hidden_size must be an integer"});
  expect_config_error(with("num_key_value_heads", 3), ErrorKind::BadInput,
                      {"num_attention_heads (4) is not a multiple of num_key_value_heads (3)"});
  expect_config_error(with("head_dim", 15), ErrorKind::BadInput, {"head_dim (15) must be even"});
  expect_config_error(with("num_attention_heads", 3), ErrorKind::BadInput, {"head_dim is missing", "not a multiple"});
  expect_config_error(with("rms_norm_eps", -1), ErrorKind::BadInput, {"rms_norm_eps"});
  expect_config_error(with("rope_theta", 0), ErrorKind::BadInput, {"rope_theta"});
  expect_config_error(with("tie_word_embeddings", "yes"), ErrorKind::BadInput, {"tie_word_embeddings"});
  expect_config_error(with("max_position_embeddings", -5), ErrorKind::BadInput, {"max_position_embeddings"});
  expect_config_error(with("architectures", nlohmann::json::array()), ErrorKind::BadInput, {"architectures"});
  expect_config_error(with("architectures", {"GPTNeoXForCausalLM"}), ErrorKind::Unsupported,
                      {"architecture 'GPTNeoXForCausalLM' is not supported", "LlamaForCausalLM"});
  expect_config_error(with("architectures", gone), ErrorKind::BadInput, {"neither 'architectures' nor 'model_type'"});
  expect_config_error(with("hidden_act", "gelu"), ErrorKind::Unsupported, {"hidden_act 'gelu'"});
  expect_config_error(with("quantization_config", {{"quant_method", "gptq"}}), ErrorKind::Unsupported,
                      {"quantization_config", "gptq"});
  expect_config_error(with("rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}), ErrorKind::Unsupported,
                      {"rope_scaling type 'yarn'"});
  expect_config_error(with("rope_scaling", {{"type", "dynamic"}, {"factor", 2.0}}), ErrorKind::Unsupported,
                      {"'dynamic'"});
  expect_config_error(with("rope_scaling", {{"type", "linear"}}), ErrorKind::BadInput, {"rope_scaling.factor is missing"});
  expect_config_error(with("rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0},
                                            {"original_max_position_embeddings", 8192}}),
                      ErrorKind::BadInput, {"rope_scaling.low_freq_factor is missing"});
  expect_config_error(with("rope_scaling", {{"factor", 2.0}}), ErrorKind::BadInput, {"rope_scaling has no 'rope_type'"});
  expect_error([] { parse_hf_config(R"({"hidden_size": 1, "hidden_size": 2})", "dir/config.json"); },
               ErrorKind::BadInput, {"dir/config.json", "duplicate key 'hidden_size'"});
  expect_error([] { parse_hf_config("{", "dir/config.json"); }, ErrorKind::BadInput, {"dir/config.json", "invalid JSON"});
  expect_error([] { parse_hf_config("[]", "dir/config.json"); }, ErrorKind::BadInput, {"not a JSON object"});
}

TEST(HfConfig, WritesWhatItReads) {
  nlohmann::json j = base_config();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  j["attention_bias"] = true;
  j["tie_word_embeddings"] = true;
  j["num_key_value_heads"] = 2;
  const Config c = parse(j);
  Vocab v;
  v.bos_id = 1;
  v.eos_id = 2;
  const std::string text = hf_config_json(c, v, DType::BF16);
  const nlohmann::json written = nlohmann::json::parse(text);
  EXPECT_EQ(written["torch_dtype"], "bfloat16");
  EXPECT_EQ(written["bos_token_id"], 1);
  EXPECT_EQ(written["eos_token_id"], 2);
  EXPECT_EQ(written["model_type"], "llama");
  const Config back = parse_hf_config(text, "written");
  EXPECT_EQ(back.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_EQ(back.rope_scaling.original_max_position, 8192);
  EXPECT_EQ(back.num_kv_heads, 2);
  EXPECT_TRUE(back.attention_bias && back.attention_out_bias && back.tie_word_embeddings);

  Config per_layer = c;
  per_layer.layer_num_heads = {4, 2};
  expect_error([&] { hf_config_json(per_layer, v, std::nullopt); }, ErrorKind::Unsupported,
               {"layer 1 has 2 heads", "same counts in every layer"});
  Config qwen = parse(base_config());
  qwen.family = "qwen2";
  expect_error([&] { hf_config_json(qwen, v, std::nullopt); }, ErrorKind::Unsupported,
               {"Qwen2ForCausalLM", "q/k/v biases"});
}

// ---- the bundled models -------------------------------------------------------------------------------------

// The pathname of the file mapping that contains [p, p+n), from /proc/self/maps ("" when none).
std::string mapping_containing(const uint8_t* p, size_t n) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) != 2) continue;
    if (addr >= begin && addr + n <= end) {
      const size_t slash = line.find('/');
      return slash == std::string::npos ? "" : line.substr(slash);
    }
  }
  return "";
}

void expect_zero_copy(const Model& m) {
  for (const auto& [name, t] : m.tensors()) {
    const std::string file = mapping_containing(t.data(), t.nbytes());
    EXPECT_NE(file.find(".safetensors"), std::string::npos) << name << " is not inside a mapped safetensors file";
  }
}

TEST(HfLoader, TinystoriesConfigTieAndDtypes) {
  const Model m = load_hf_model(model_path("tinystories-656k"));
  const Config& c = m.config;
  EXPECT_EQ(c.family, "llama");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.name, "tinystories-656k");
  EXPECT_EQ(m.source_format, "hf");
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.intermediate_size, 384);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 2048);
  EXPECT_EQ(c.max_position, 512);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  // 20 stored tensors: lm_head.weight becomes the embedding (via the __metadata__ alias) and no head remains.
  EXPECT_EQ(m.tensors().size(), 20u);
  EXPECT_TRUE(m.has(names::kEmbedTokens));
  EXPECT_FALSE(m.has(names::kLmHead));
  EXPECT_EQ(&m.output_weight(), m.find(names::kEmbedTokens));
  for (const auto& [name, t] : m.tensors()) EXPECT_EQ(t.dtype(), DType::F32) << name;
  EXPECT_EQ(m.parameter_count(), 2048 * 128 + 128 + 2 * (2 * 128 + 128 * 128 * 2 + 64 * 128 * 2 + 3 * 384 * 128));
  EXPECT_EQ(m.vocab.kind, VocabKind::SentencePieceBpe);
  EXPECT_EQ(m.vocab.size(), 2048);
  EXPECT_EQ(m.generation.json, read_text_file(model_path("tinystories-656k/generation_config.json")));
  expect_zero_copy(m);
}

TEST(HfLoader, KjvConfigUntiedBf16) {
  const Model m = load_hf_model(model_path("llama-5m-kjv/"));
  const Config& c = m.config;
  EXPECT_EQ(c.name, "llama-5m-kjv");
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.intermediate_size, 768);
  EXPECT_EQ(c.num_layers, 4);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 4096);
  EXPECT_EQ(c.max_position, 256);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(m.tensors().size(), 39u);
  EXPECT_TRUE(m.has(names::kLmHead));
  EXPECT_NE(m.tensor(names::kLmHead).data(), m.tensor(names::kEmbedTokens).data());
  for (const auto& [name, t] : m.tensors()) EXPECT_EQ(t.dtype(), DType::BF16) << name;
  EXPECT_EQ(m.vocab.kind, VocabKind::ByteLevelBpe);
  EXPECT_EQ(m.vocab.size(), 4096);
  expect_zero_copy(m);
}

TEST(HfLoader, ZeroCopyCheckCanFail) {
  // The /proc/self/maps probe must not accept heap memory, or the zero-copy assertions above prove nothing.
  const Tensor owned = Tensor::from_f32("x", {4}, std::vector<float>{1, 2, 3, 4});
  EXPECT_EQ(mapping_containing(owned.data(), owned.nbytes()).find(".safetensors"), std::string::npos);
}

// ---- crafted folders ------------------------------------------------------------------------------------------

std::string kjv_config_text() { return read_text_file(model_path("llama-5m-kjv/config.json")); }

// A folder with the given config.json and tensors (tokenizer and generation config copied from kjv if asked).
std::string make_folder(const std::string& name, const std::string& config_text, const std::vector<const Tensor*>& ts,
                        const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
                        bool with_tokenizer = true) {
  const std::string dir = scratch_dir(name);
  write_file_atomic(dir + "/config.json", config_text);
  write_safetensors(dir + "/model.safetensors", ts, metadata);
  if (with_tokenizer) {
    fs::copy_file(model_path("llama-5m-kjv/tokenizer.json"), dir + "/tokenizer.json");
    fs::copy_file(model_path("llama-5m-kjv/tokenizer_config.json"), dir + "/tokenizer_config.json");
  }
  return dir;
}

std::vector<const Tensor*> kjv_tensors(const SafetensorsFile& f, const std::set<std::string>& skip = {}) {
  std::vector<const Tensor*> out;
  for (const Tensor& t : f.tensors())
    if (skip.count(t.name()) == 0) out.push_back(&t);
  return out;
}

TEST(HfLoader, RefusesUnknownAndMisnamedTensors) {
  const SafetensorsFile kjv = SafetensorsFile::open(model_path("llama-5m-kjv/model.safetensors"));
  // A misspelt name: the real tensor is missing and an unknown one is present.
  Tensor misspelt = *kjv.find("model.layers.1.mlp.up_proj.weight");
  misspelt.set_name("model.layers.1.mlp.up_proj.wieght");
  std::vector<const Tensor*> ts = kjv_tensors(kjv, {"model.layers.1.mlp.up_proj.weight"});
  ts.push_back(&misspelt);
  std::string dir = make_folder("hf_misspelt", kjv_config_text(), ts);
  expect_error([&] { load_hf_model(dir); }, ErrorKind::BadInput,
               {dir, "1 tensor(s)", "model.layers.1.mlp.up_proj.wieght"});

  // A tensor the config does not have (a 5th layer in a 4-layer config).
  Tensor extra = *kjv.find("model.layers.3.input_layernorm.weight");
  extra.set_name("model.layers.4.input_layernorm.weight");
  ts = kjv_tensors(kjv);
  ts.push_back(&extra);
  dir = make_folder("hf_extra_layer", kjv_config_text(), ts);
  expect_error([&] { load_hf_model(dir); }, ErrorKind::BadInput, {"model.layers.4.input_layernorm.weight"});

  // A missing tensor.
  dir = make_folder("hf_missing", kjv_config_text(), kjv_tensors(kjv, {"model.norm.weight"}));
  expect_error([&] { load_hf_model(dir); }, ErrorKind::BadInput, {"model.norm.weight", "missing"});

  // Shapes that disagree with config.json.
  nlohmann::json config = nlohmann::json::parse(kjv_config_text());
  config["intermediate_size"] = 512;
  dir = make_folder("hf_shape", config.dump(), kjv_tensors(kjv));
  expect_error([&] { load_hf_model(dir); }, ErrorKind::BadInput, {"mlp", "[768, 256]", "[512, 256]"});
}

TEST(HfLoader, DropsRotaryBuffersAndResolvesAliases) {
  const SafetensorsFile kjv = SafetensorsFile::open(model_path("llama-5m-kjv/model.safetensors"));
  const Tensor inv_freq = Tensor::from_f32("model.layers.0.self_attn.rotary_emb.inv_freq", {32}, std::vector<float>(32, 1));
  std::vector<const Tensor*> ts = kjv_tensors(kjv);
  ts.push_back(&inv_freq);
  Model m = load_hf_model(make_folder("hf_buffers", kjv_config_text(), ts));
  EXPECT_EQ(m.tensors().size(), 39u);
  EXPECT_FALSE(m.has("model.layers.0.self_attn.rotary_emb.inv_freq"));

  // Untied, but the file stores one copy of a shared head/embedding with the metadata alias: both names exist
  // and view the same bytes.
  Tensor head = *kjv.find(names::kEmbedTokens);
  head.set_name(names::kLmHead);
  ts = kjv_tensors(kjv, {names::kEmbedTokens, names::kLmHead});
  ts.push_back(&head);
  m = load_hf_model(make_folder("hf_alias", kjv_config_text(), ts,
                                {{"format", "pt"}, {names::kEmbedTokens, names::kLmHead}}));
  EXPECT_EQ(m.tensors().size(), 39u);
  EXPECT_EQ(m.tensor(names::kEmbedTokens).data(), m.tensor(names::kLmHead).data());

  // Tied, storing only lm_head and no alias: the head becomes the embedding.
  nlohmann::json tied = nlohmann::json::parse(kjv_config_text());
  tied["tie_word_embeddings"] = true;
  m = load_hf_model(make_folder("hf_tied_head_only", tied.dump(), ts, {}, /*with_tokenizer=*/false));
  EXPECT_EQ(m.tensors().size(), 38u);
  EXPECT_FALSE(m.has(names::kLmHead));
  EXPECT_EQ(std::memcmp(m.tensor(names::kEmbedTokens).data(), kjv.find(names::kEmbedTokens)->data(),
                        m.tensor(names::kEmbedTokens).nbytes()),
            0);
  EXPECT_EQ(m.vocab.kind, VocabKind::None);  // no tokenizer.json: allowed

  // Tied with both stored: the embedding wins, the head is dropped.
  m = load_hf_model(make_folder("hf_tied_both", tied.dump(), kjv_tensors(kjv)));
  EXPECT_EQ(m.tensors().size(), 38u);
  const Tensor& embed = m.tensor(names::kEmbedTokens);
  EXPECT_EQ(std::memcmp(embed.data(), kjv.find(names::kEmbedTokens)->data(), embed.nbytes()), 0);
  EXPECT_NE(std::memcmp(embed.data(), kjv.find(names::kLmHead)->data(), embed.nbytes()), 0);
}

TEST(HfLoader, RefusesFoldersThatAreNotCheckpoints) {
  expect_error([] { load_hf_model("/nonexistent/slmopt/model"); }, ErrorKind::Io, {"/nonexistent/slmopt/model"});
  const std::string empty = scratch_dir("hf_empty");
  expect_error([&] { load_hf_model(empty); }, ErrorKind::BadInput, {empty, "no config.json"});
  write_file_atomic(empty + "/config.json", kjv_config_text());
  expect_error([&] { load_hf_model(empty); }, ErrorKind::BadInput, {empty, "no model.safetensors"});
  write_file_atomic(empty + "/pytorch_model.bin", "not really");
  expect_error([&] { load_hf_model(empty); }, ErrorKind::Unsupported, {"pytorch_model.bin"});

  const SafetensorsFile kjv = SafetensorsFile::open(model_path("llama-5m-kjv/model.safetensors"));
  const std::string dir = make_folder("hf_bad_generation", kjv_config_text(), kjv_tensors(kjv));
  write_file_atomic(dir + "/generation_config.json", "{oops");
  expect_error([&] { load_hf_model(dir); }, ErrorKind::BadInput, {"generation_config.json", "invalid JSON"});
}

TEST(HfLoader, ShardedCheckpointLoadsTheSameBytes) {
  const std::string dir = scratch_dir("hf_sharded");
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(model_path(std::string("llama-5m-kjv/") + f), dir + "/" + f);
  const Model original = load_hf_model(model_path("llama-5m-kjv"));
  const std::vector<std::string> files =
      write_safetensors_sharded(dir, original.ordered_tensors(), {{"format", "pt"}}, 2u << 20);
  EXPECT_EQ(files.size(), 7u);  // 10.5 MB in 2 MB shards: 6 shards + index
  const Model sharded = load_hf_model(dir);
  ASSERT_EQ(sharded.tensors().size(), original.tensors().size());
  for (const auto& [name, t] : original.tensors()) {
    const Tensor& s = sharded.tensor(name);
    EXPECT_EQ(s.shape(), t.shape()) << name;
    EXPECT_EQ(s.dtype(), t.dtype()) << name;
    ASSERT_EQ(s.nbytes(), t.nbytes()) << name;
    EXPECT_EQ(std::memcmp(s.data(), t.data(), t.nbytes()), 0) << name;
  }
  expect_zero_copy(sharded);
}

// ---- writer -------------------------------------------------------------------------------------------------

void expect_same_model(const Model& a, const Model& b) {
  const Config &x = a.config, &y = b.config;
  EXPECT_EQ(x.family, y.family);
  EXPECT_EQ(x.architecture, y.architecture);
  EXPECT_EQ(x.hidden_size, y.hidden_size);
  EXPECT_EQ(x.intermediate_size, y.intermediate_size);
  EXPECT_EQ(x.num_layers, y.num_layers);
  EXPECT_EQ(x.num_heads, y.num_heads);
  EXPECT_EQ(x.num_kv_heads, y.num_kv_heads);
  EXPECT_EQ(x.head_dim, y.head_dim);
  EXPECT_EQ(x.vocab_size, y.vocab_size);
  EXPECT_EQ(x.max_position, y.max_position);
  EXPECT_EQ(x.norm_eps, y.norm_eps);  // exact: doubles survive JSON
  EXPECT_EQ(x.rope_theta, y.rope_theta);
  EXPECT_EQ(x.rope_scaling.type, y.rope_scaling.type);
  EXPECT_EQ(x.tie_word_embeddings, y.tie_word_embeddings);
  EXPECT_EQ(x.attention_bias, y.attention_bias);
  EXPECT_EQ(x.attention_out_bias, y.attention_out_bias);
  EXPECT_EQ(x.mlp_bias, y.mlp_bias);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& [name, t] : a.tensors()) {
    const Tensor* u = b.find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_EQ(u->dtype(), t.dtype()) << name;
    EXPECT_EQ(u->shape(), t.shape()) << name;
    ASSERT_EQ(u->nbytes(), t.nbytes()) << name;
    EXPECT_EQ(std::memcmp(u->data(), t.data(), t.nbytes()), 0) << name;
  }
  EXPECT_EQ(a.vocab.kind, b.vocab.kind);
  EXPECT_EQ(a.vocab.tokens, b.vocab.tokens);
  EXPECT_EQ(a.vocab.merges, b.vocab.merges);
  EXPECT_EQ(a.vocab.bos_id, b.vocab.bos_id);
  EXPECT_EQ(a.vocab.eos_id, b.vocab.eos_id);
  EXPECT_EQ(a.generation.json, b.generation.json);
}

std::vector<std::string> folder_entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(HfWriter, RoundTripsBothBundledModelsBitForBit) {
  for (const char* name : {"tinystories-656k", "llama-5m-kjv"}) {
    SCOPED_TRACE(name);
    const Model original = load_hf_model(model_path(name));
    const std::string parent = scratch_dir(std::string("hf_write_") + name);
    const std::string out = parent + "/out";
    write_hf_model(original, out);
    EXPECT_EQ(folder_entries(parent), std::vector<std::string>{"out"});  // no temporary left beside it
    EXPECT_EQ(folder_entries(out), (std::vector<std::string>{"config.json", "generation_config.json",
                                                             "model.safetensors", "tokenizer.json",
                                                             "tokenizer_config.json"}));
    const Model back = load_hf_model(out);
    expect_same_model(original, back);
    EXPECT_EQ(back.config.name, "out");
    // Tokenizer files are reproduced verbatim.
    EXPECT_EQ(read_text_file(out + "/tokenizer.json"), read_text_file(model_path(std::string(name) + "/tokenizer.json")));
    // Writing the loaded copy again gives identical bytes (determinism).
    const std::string again = parent + "/again";
    write_hf_model(back, again);
    for (const char* f : {"config.json", "model.safetensors"})
      EXPECT_EQ(read_text_file(out + "/" + f), read_text_file(again + "/" + f)) << f;
  }
  // The tied model stores the embedding only.
  const std::string tied = scratch_dir("hf_write_tied_check") + "/out";
  write_hf_model(load_hf_model(model_path("tinystories-656k")), tied);
  const SafetensorsFile f = SafetensorsFile::open(tied + "/model.safetensors");
  EXPECT_EQ(f.tensors().size(), 20u);
  EXPECT_EQ(f.find(names::kLmHead), nullptr);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const nlohmann::json config = nlohmann::json::parse(read_text_file(tied + "/config.json"));
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_EQ(config["tie_word_embeddings"], true);
  EXPECT_EQ(config["bos_token_id"], 1);
  EXPECT_EQ(config["eos_token_id"], 2);
}

TEST(HfWriter, ConvertsFloatTypeAndShards) {
  const Model kjv = load_hf_model(model_path("llama-5m-kjv"));
  const std::string out = scratch_dir("hf_write_f32") + "/out";
  write_hf_model(kjv, out, {DType::F32, 8u << 20});  // F32 doubles the 10.5 MB: 3 shards of ≤ 8 MB
  EXPECT_TRUE(file_exists(out + "/model.safetensors.index.json"));
  EXPECT_TRUE(file_exists(out + "/model-00003-of-00003.safetensors"));
  EXPECT_FALSE(file_exists(out + "/model.safetensors"));
  const Model back = load_hf_model(out);
  EXPECT_EQ(nlohmann::json::parse(read_text_file(out + "/config.json"))["torch_dtype"], "float32");
  ASSERT_EQ(back.tensors().size(), kjv.tensors().size());
  for (const auto& [name, t] : kjv.tensors()) {
    const Tensor& u = back.tensor(name);
    ASSERT_EQ(u.dtype(), DType::F32) << name;
    EXPECT_EQ(u.to_f32(), t.to_f32()) << name;  // BF16 → F32 is exact
  }
  // And back to BF16: the original bytes again.
  const std::string bf16 = scratch_dir("hf_write_bf16") + "/out";
  write_hf_model(back, bf16, {DType::BF16});
  expect_same_model(kjv, load_hf_model(bf16));
}

TEST(HfWriter, ReplacesAnEarlierModelButNoOtherFolder) {
  const Model tiny = load_hf_model(model_path("tinystories-656k"));
  const Model kjv = load_hf_model(model_path("llama-5m-kjv"));
  const std::string parent = scratch_dir("hf_write_replace");
  const std::string out = parent + "/out";
  write_hf_model(kjv, out, {DType::F32, 4u << 20});  // sharded
  write_hf_model(tiny, out);                           // replaced by a single-file model
  EXPECT_FALSE(file_exists(out + "/model.safetensors.index.json"));
  expect_same_model(tiny, load_hf_model(out));
  EXPECT_EQ(folder_entries(parent), std::vector<std::string>{"out"});

  const std::string other = parent + "/photos";
  fs::create_directories(other);
  write_file_atomic(other + "/holiday.jpg", "precious");
  expect_error([&] { write_hf_model(tiny, other); }, ErrorKind::Usage, {other, "does not hold a model"});
  EXPECT_EQ(read_text_file(other + "/holiday.jpg"), "precious");
}

TEST(HfWriter, LeavesNothingBehindWhenRefused) {
  Model m = load_hf_model(model_path("tinystories-656k"));
  // A block-quantized tensor (same shape; 128 columns = 4 Q8_0 blocks per row) cannot be stored as it is.
  const Tensor& norm = m.tensor("model.layers.0.mlp.up_proj.weight");
  m.set(Tensor::owned(norm.name(), norm.shape(), DType::Q8_0,
                      std::vector<uint8_t>(Tensor::bytes_for(norm.shape(), DType::Q8_0), 0)));
  const std::string parent = scratch_dir("hf_write_refused");
  expect_error([&] { write_hf_model(m, parent + "/out"); }, ErrorKind::Unsupported,
               {"model.layers.0.mlp.up_proj.weight", "q8_0"});
  EXPECT_TRUE(folder_entries(parent).empty());

  Model extra = load_hf_model(model_path("tinystories-656k"));
  extra.set(Tensor::from_f32("model.layers.0.mystery.weight", {2}, std::vector<float>{1, 2}));
  expect_error([&] { write_hf_model(extra, parent + "/out"); }, ErrorKind::Unsupported, {"model.layers.0.mystery"});
  EXPECT_TRUE(folder_entries(parent).empty());
}

// A small synthetic Qwen2 model (q/k/v biases) written and read back: exercises a family whose config.json and
// tensors the bundled models do not cover.
TEST(HfWriter, Qwen2WithBiasesRoundTrips) {
  Model m;
  Config& c = m.config;
  c.family = "qwen2";
  c.architecture = "Qwen2ForCausalLM";
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 50;
  c.max_position = 128;
  c.norm_eps = 1e-6;
  c.rope_theta = 1e6;
  c.attention_bias = true;
  c.tie_word_embeddings = true;
  uint32_t seed = 7;
  auto values = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = static_cast<float>((seed = seed * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    return v;
  };
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    m.set(Tensor::from_f32_as(name, shape, values(n), DType::BF16));
  };
  add(names::kEmbedTokens, {50, 32});
  add(names::kFinalNorm, {32});
  for (int64_t l = 0; l < 2; ++l) {
    add(names::attn_norm(l), {32});
    add(names::ffn_norm(l), {32});
    add(names::q_proj(l), {32, 32});
    add(names::k_proj(l), {16, 32});
    add(names::v_proj(l), {16, 32});
    add(names::o_proj(l), {32, 32});
    add(names::q_bias(l), {32});
    add(names::k_bias(l), {16});
    add(names::v_bias(l), {16});
    add(names::gate_proj(l), {64, 32});
    add(names::up_proj(l), {64, 32});
    add(names::down_proj(l), {32, 64});
  }
  m.validate();
  const std::string out = scratch_dir("hf_write_qwen2") + "/qwen";
  write_hf_model(m, out);
  const nlohmann::json config = nlohmann::json::parse(read_text_file(out + "/config.json"));
  EXPECT_EQ(config["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(config["model_type"], "qwen2");
  EXPECT_FALSE(file_exists(out + "/tokenizer.json"));  // no vocabulary, no tokenizer files
  const Model back = load_hf_model(out);
  expect_same_model(m, back);
  EXPECT_TRUE(back.has(names::q_bias(1)));

  // Dropping a bias makes the folder invalid for Qwen2: the loader names the missing tensor.
  m.erase(names::v_bias(1));
  expect_error([&] { m.validate(); }, ErrorKind::BadInput, {names::v_bias(1)});
}

// ---- load_model ---------------------------------------------------------------------------------------------

TEST(ModelLoader, DispatchesOnThePath) {
  EXPECT_EQ(load_model(model_path("llama-5m-kjv")).config.name, "llama-5m-kjv");
  expect_error([] { load_model("/nonexistent/x.gguf"); }, ErrorKind::Io, {"/nonexistent/x.gguf"});
  const std::string dir = scratch_dir("model_loader");
  write_file_atomic(dir + "/m.gguf", "GGUF");
  // A .gguf path goes to the GGUF reader, which names the file and the defect.
  expect_error([&] { load_model(dir + "/m.gguf"); }, ErrorKind::BadInput, {dir + "/m.gguf", "GGUF"});
  EXPECT_EQ(load_model(model_path("capp-gpt2-onnx/model.onnx")).source_format, "onnx");  // io/onnx_import.h
  expect_error([&] { load_model(model_path("llama-5m-kjv/model.safetensors")); }, ErrorKind::Unsupported,
               {"pass the Hugging Face model folder"});
  write_file_atomic(dir + "/notes.txt", "hello");
  expect_error([&] { load_model(dir + "/notes.txt"); }, ErrorKind::Unsupported, {"unrecognised model format"});
}

}  // namespace
}  // namespace slmopt
