// GPT-2 checkpoints (see hf_gpt2.h): config fields with transformers' GPT2Config defaults and the decoder
// description they imply, the Conv1D transposition to the IR layout, and the renaming onto canonical names.
#include "slmopt/io/hf_gpt2.h"

#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>

#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/config_limits.h"
#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/tensor_names.h"
#include "json_strict.h"

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
  check_config_sizes(c, source);
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
  set_gpt2_description(c);
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

void set_gpt2_description(Config& c) {
  c.norm_kind = NormKind::LayerNorm;
  c.norm_bias = true;
  c.norm_placement = NormPlacement::Pre;
  c.residual_layout = ResidualLayout::Sequential;
  c.position_kind = PositionKind::Learned;
  c.mlp_kind = MlpKind::GeluTanh;
  c.tie_word_embeddings = true;
  c.attention_bias = c.attention_out_bias = c.mlp_bias = true;
}

void check_gpt2_tensors(const Model& model, const std::string& source) {
  std::set<std::string> expected;
  for (const ExpectedTensor& want : decoder_tensors(model.config)) {
    expected.insert(want.name);
    const Tensor* t = model.find(want.name);
    if (!t) throw_error(ErrorKind::BadInput, "{}: tensor '{}' is missing", source, want.name);
    if (t->shape() != want.shape)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, but the config implies {}", source, want.name,
                  shape_to_string(t->shape()), shape_to_string(want.shape));
  }
  for (const auto& [name, t] : model.tensors())
    if (expected.count(name) == 0)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' is not part of a GPT-2 model with this config", source, name);
}

namespace {

// 1-D slice [begin, end) of a vector tensor as an owned F32 tensor (biases are tiny; no view needed).
Tensor vector_slice_f32(const Tensor& t, const std::string& name, int64_t begin, int64_t end) {
  const std::vector<float> v = t.to_f32();
  return Tensor::from_f32(name, {end - begin}, std::span<const float>(v).subspan(static_cast<size_t>(begin),
                                                                               static_cast<size_t>(end - begin)));
}

// Hugging Face GPT-2 block suffix → canonical name (the fused c_attn is handled apart).
std::optional<std::string> canonical_block_name(int64_t l, const std::string& suffix) {
  static const std::pair<const char*, std::string (*)(int64_t)> kRenames[] = {
      {"ln_1.weight", names::attn_norm},      {"ln_1.bias", names::attn_norm_bias},
      {"ln_2.weight", names::ffn_norm},       {"ln_2.bias", names::ffn_norm_bias},
      {"attn.c_proj.weight", names::o_proj},  {"attn.c_proj.bias", names::o_bias},
      {"mlp.c_fc.weight", names::up_proj},    {"mlp.c_fc.bias", names::up_bias},
      {"mlp.c_proj.weight", names::down_proj}, {"mlp.c_proj.bias", names::down_bias},
  };
  for (const auto& [from, to] : kRenames)
    if (suffix == from) return to(l);
  return std::nullopt;
}

}  // namespace

void add_gpt2_tensor(Model& model, const std::string& hf_name, Tensor t) {
  namespace g = names::gpt2;
  static const std::pair<std::string, std::string> kGlobal[] = {
      {g::kTokenEmbedding, names::kEmbedTokens},
      {g::kPositionEmbedding, names::kPositionEmbedding},
      {g::kFinalNormWeight, names::kFinalNorm},
      {g::kFinalNormBias, names::kFinalNormBias},
  };
  for (const auto& [from, to] : kGlobal)
    if (hf_name == from) {
      t.set_name(to);
      model.set(std::move(t));
      return;
    }
  const std::string prefix = "transformer.h.";
  if (hf_name.rfind(prefix, 0) == 0) {
    size_t pos = prefix.size();
    int64_t l = 0;
    while (pos < hf_name.size() && pos - prefix.size() < 9 && std::isdigit(static_cast<unsigned char>(hf_name[pos])))
      l = l * 10 + (hf_name[pos++] - '0');
    if (pos > prefix.size() && pos < hf_name.size() && hf_name[pos] == '.') {
      const std::string suffix = hf_name.substr(pos + 1);
      if (auto name = canonical_block_name(l, suffix)) {
        t.set_name(*name);
        model.set(std::move(t));
        return;
      }
      // c_attn: rows Q, then K, then V (each hidden_size rows).
      if (suffix == "attn.c_attn.weight" || suffix == "attn.c_attn.bias") {
        const bool weight = suffix == "attn.c_attn.weight";
        if ((weight && t.rank() != 2) || (!weight && t.rank() != 1) || t.dim(0) % 3 != 0)
          throw_error(ErrorKind::BadInput, "tensor '{}' has shape {}, expected 3·hidden rows", hf_name,
                      shape_to_string(t.shape()));
        const int64_t h = t.dim(0) / 3;
        const std::string targets[3] = {weight ? names::q_proj(l) : names::q_bias(l),
                                        weight ? names::k_proj(l) : names::k_bias(l),
                                        weight ? names::v_proj(l) : names::v_bias(l)};
        for (int64_t part = 0; part < 3; ++part)
          model.set(weight ? t.rows_view(targets[part], part * h, (part + 1) * h)
                           : vector_slice_f32(t, targets[part], part * h, (part + 1) * h));
        return;
      }
    }
  }
  throw_error(ErrorKind::BadInput, "tensor '{}' is not part of a GPT-2 model", hf_name);
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

std::vector<Tensor> gpt2_hf_tensors(const Model& model) {
  namespace g = names::gpt2;
  const Config& c = model.config;
  std::vector<Tensor> out;
  auto renamed = [&](const std::string& from, const std::string& to) {
    Tensor t = model.tensor(from);
    t.set_name(to);
    out.push_back(std::move(t));
  };
  // Conv1D: [in, out] on disk.
  auto conv1d = [&](std::vector<std::string> parts, const std::string& to) {
    std::vector<float> rows;
    int64_t out_rows = 0, in = 0;
    for (const std::string& part : parts) {
      const Tensor& t = model.tensor(part);
      const std::vector<float> v = t.to_f32();
      rows.insert(rows.end(), v.begin(), v.end());
      out_rows += t.dim(0);
      in = t.dim(1);
    }
    out.push_back(transposed_f32(Tensor::from_f32(to, {out_rows, in}, rows), to));
  };
  auto concat_vectors = [&](std::vector<std::string> parts, const std::string& to) {
    std::vector<float> values;
    for (const std::string& part : parts) {
      const std::vector<float> v = model.tensor(part).to_f32();
      values.insert(values.end(), v.begin(), v.end());
    }
    out.push_back(Tensor::from_f32(to, {static_cast<int64_t>(values.size())}, values));
  };
  renamed(names::kEmbedTokens, g::kTokenEmbedding);
  renamed(names::kPositionEmbedding, g::kPositionEmbedding);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    renamed(names::attn_norm(l), g::block(l, "ln_1.weight"));
    renamed(names::attn_norm_bias(l), g::block(l, "ln_1.bias"));
    conv1d({names::q_proj(l), names::k_proj(l), names::v_proj(l)}, g::block(l, "attn.c_attn.weight"));
    concat_vectors({names::q_bias(l), names::k_bias(l), names::v_bias(l)}, g::block(l, "attn.c_attn.bias"));
    conv1d({names::o_proj(l)}, g::block(l, "attn.c_proj.weight"));
    renamed(names::o_bias(l), g::block(l, "attn.c_proj.bias"));
    renamed(names::ffn_norm(l), g::block(l, "ln_2.weight"));
    renamed(names::ffn_norm_bias(l), g::block(l, "ln_2.bias"));
    conv1d({names::up_proj(l)}, g::block(l, "mlp.c_fc.weight"));
    renamed(names::up_bias(l), g::block(l, "mlp.c_fc.bias"));
    conv1d({names::down_proj(l)}, g::block(l, "mlp.c_proj.weight"));
    renamed(names::down_bias(l), g::block(l, "mlp.c_proj.bias"));
  }
  renamed(names::kFinalNorm, g::kFinalNormWeight);
  renamed(names::kFinalNormBias, g::kFinalNormBias);
  return out;
}

Model load_hf_gpt2_model(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  const std::string text = read_text_file(config_path);
  const nlohmann::json j = parse_json_strict(text, config_path);
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
    add_gpt2_tensor(model, name, is_conv1d_weight(name) ? transposed_f32(t, name) : std::move(t));
  }
  check_gpt2_tensors(model, dir);
  if (file_exists(dir + "/generation_config.json"))
    model.generation.json = read_text_file(dir + "/generation_config.json");
  if (file_exists(dir + "/tokenizer.json"))
    model.vocab = load_hf_vocab(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  return model;
}

}  // namespace slmopt
