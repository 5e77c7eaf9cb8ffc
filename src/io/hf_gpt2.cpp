// GPT-2 checkpoints (see hf_gpt2.h): config fields with transformers' GPT2Config defaults, the Conv1D
// transposition to the IR layout, and the shape checks Model::validate leaves to the family.
#include "slmopt/io/hf_gpt2.h"

#include <filesystem>
#include <map>
#include <set>

#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

int64_t positive_field(const nlohmann::json& j, const char* field, const std::string& source, int64_t fallback,
                       bool required) {
  if (!j.contains(field) || j[field].is_null()) {
    if (required) throw_error(ErrorKind::BadInput, "{}: {} is missing", source, field);
    return fallback;
  }
  if (!j[field].is_number_integer() || j[field].get<int64_t>() <= 0 || j[field].get<int64_t>() > (int64_t{1} << 31))
    throw_error(ErrorKind::BadInput, "{}: {} must be a positive integer, got {}", source, field, j[field].dump());
  return j[field].get<int64_t>();
}

// The Conv1D weights, stored [in, out] by Hugging Face and transposed at load.
bool is_conv1d_weight(const std::string& name) {
  for (const char* suffix : {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"}) {
    const std::string s(suffix);
    if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
  }
  return false;
}

bool is_mask_buffer(const std::string& name) {
  for (const std::string s : {".attn.bias", ".attn.masked_bias"})
    if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
  return false;
}

}  // namespace

bool is_gpt2_config(const nlohmann::json& j) {
  if (!j.is_object()) return false;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    return j["architectures"][0].get<std::string>() == "GPT2LMHeadModel";
  return j.contains("model_type") && j["model_type"] == "gpt2";
}

Config parse_gpt2_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw_error(ErrorKind::BadInput, "{}: not a JSON object", source);
  Config c;
  c.family = Family::Gpt2;
  c.architecture = "GPT2LMHeadModel";
  c.hidden_size = positive_field(j, "n_embd", source, 768, false);
  c.num_layers = positive_field(j, "n_layer", source, 12, false);
  c.num_heads = c.num_kv_heads = positive_field(j, "n_head", source, 12, false);
  c.intermediate_size = positive_field(j, "n_inner", source, 4 * c.hidden_size, false);
  c.max_position = positive_field(j, "n_positions", source, 1024, false);
  c.vocab_size = positive_field(j, "vocab_size", source, 50257, false);
  if (c.hidden_size % c.num_heads != 0)
    throw_error(ErrorKind::BadInput, "{}: n_embd {} is not a multiple of n_head {}", source, c.hidden_size,
                c.num_heads);
  c.head_dim = c.hidden_size / c.num_heads;
  if (j.contains("layer_norm_epsilon") && !j["layer_norm_epsilon"].is_null()) {
    if (!j["layer_norm_epsilon"].is_number())
      throw_error(ErrorKind::BadInput, "{}: layer_norm_epsilon must be a number", source);
    c.norm_eps = j["layer_norm_epsilon"].get<double>();
  }
  const std::string act = j.value("activation_function", std::string("gelu_new"));
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    throw_error(ErrorKind::Unsupported, "{}: activation_function '{}' is not supported (gelu_new, gelu_pytorch_tanh)",
                source, act);
  for (const char* flag : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"})
    if (j.contains(flag) && j[flag].is_boolean() && j[flag].get<bool>())
      throw_error(ErrorKind::Unsupported, "{}: {} = true is not supported", source, flag);
  if (j.contains("scale_attn_weights") && j["scale_attn_weights"].is_boolean() && !j["scale_attn_weights"].get<bool>())
    throw_error(ErrorKind::Unsupported, "{}: scale_attn_weights = false is not supported", source);
  c.tie_word_embeddings = true;
  c.attention_bias = c.attention_out_bias = c.mlp_bias = true;
  c.validate(source);
  return c;
}

std::string gpt2_config_json(const Config& c) {
  nlohmann::ordered_json j = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"activation_function", "gelu_new"},
      {"n_embd", c.hidden_size},
      {"n_layer", c.num_layers},
      {"n_head", c.num_heads},
      {"n_inner", c.intermediate_size},
      {"n_positions", c.max_position},
      {"n_ctx", c.max_position},
      {"vocab_size", c.vocab_size},
      {"layer_norm_epsilon", c.norm_eps},
      {"tie_word_embeddings", true},
  };
  return j.dump(2) + "\n";
}

std::vector<std::pair<std::string, std::vector<int64_t>>> gpt2_tensor_shapes(const Config& c) {
  namespace g = names::gpt2;
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {{g::kTokenEmbedding, {c.vocab_size, h}},
                                                                   {g::kPositionEmbedding, {c.max_position, h}}};
  for (int64_t l = 0; l < c.num_layers; ++l) {
    for (const char* ln : {"ln_1.", "ln_2."}) {
      out.push_back({g::block(l, std::string(ln) + "weight"), {h}});
      out.push_back({g::block(l, std::string(ln) + "bias"), {h}});
    }
    out.push_back({g::block(l, "attn.c_attn.weight"), {3 * h, h}});
    out.push_back({g::block(l, "attn.c_attn.bias"), {3 * h}});
    out.push_back({g::block(l, "attn.c_proj.weight"), {h, h}});
    out.push_back({g::block(l, "attn.c_proj.bias"), {h}});
    out.push_back({g::block(l, "mlp.c_fc.weight"), {f, h}});
    out.push_back({g::block(l, "mlp.c_fc.bias"), {f}});
    out.push_back({g::block(l, "mlp.c_proj.weight"), {h, f}});
    out.push_back({g::block(l, "mlp.c_proj.bias"), {h}});
  }
  out.push_back({g::kFinalNormWeight, {h}});
  out.push_back({g::kFinalNormBias, {h}});
  return out;
}

void check_gpt2_tensors(const Model& model, const std::string& source) {
  std::set<std::string> expected;
  for (const auto& [name, shape] : gpt2_tensor_shapes(model.config)) {
    expected.insert(name);
    const Tensor* t = model.find(name);
    if (!t) throw_error(ErrorKind::BadInput, "{}: tensor '{}' is missing", source, name);
    if (t->shape() != shape)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, but the config implies {}", source, name,
                  shape_to_string(t->shape()), shape_to_string(shape));
  }
  for (const auto& [name, t] : model.tensors())
    if (expected.count(name) == 0)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' is not part of a GPT-2 model with this config", source, name);
}

Tensor transposed_f32(const Tensor& t, const std::string& name) {
  if (t.rank() != 2)
    throw_error(ErrorKind::BadInput, "tensor '{}' has shape {}, expected a matrix", t.name(),
                shape_to_string(t.shape()));
  const int64_t rows = t.dim(0), cols = t.dim(1);
  const std::vector<float> v = t.to_f32();
  std::vector<float> out(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(c * rows + r)] = v[static_cast<size_t>(r * cols + c)];
  return Tensor::from_f32(name, {cols, rows}, out);
}

Model load_hf_gpt2_model(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  const std::string text = read_text_file(config_path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::BadInput, "{}: {}", config_path, e.what());
  }
  Model model;
  model.source_path = dir;
  model.source_format = "hf";
  model.config = parse_gpt2_config(j, config_path);
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  model.config.name = p.filename().string();

  SafetensorsCheckpoint checkpoint = read_safetensors_checkpoint(dir);
  for (Tensor& t : checkpoint.tensors) {
    std::string name = t.name();
    if (is_mask_buffer(name)) continue;
    if (name == names::kLmHead) continue;  // tied to wte (GPT2LMHeadModel always ties)
    if (name.rfind("transformer.", 0) != 0) name = "transformer." + name;
    if (is_conv1d_weight(name)) {
      model.set(transposed_f32(t, name));
    } else {
      t.set_name(name);
      model.set(std::move(t));
    }
  }
  check_gpt2_tensors(model, dir);
  if (file_exists(dir + "/generation_config.json"))
    model.generation.json = read_text_file(dir + "/generation_config.json");
  if (file_exists(dir + "/tokenizer.json"))
    model.vocab = load_hf_vocab(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  return model;
}

}  // namespace slmopt
