// The llama-family GGUF registry (see gguf_arch.h): names, keys and the two layout translations.
#include "gguf_arch.h"

#include <array>
#include <cmath>
#include <cstring>
#include <numbers>

#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::gguf_arch {
namespace {

constexpr std::array<Architecture, 3> kArchitectures = {{
    {"llama", Family::Llama, "LlamaForCausalLM", true},
    {"qwen2", Family::Qwen2, "Qwen2ForCausalLM", false},
    // llama.cpp runs "deci" with the llama graph (interleaved RoPE) and per-layer widths.
    {"deci", Family::Llama, "LlamaForCausalLM", true},
}};

// Per-layer tensors: Hugging Face suffix (after "model.layers.N.") ↔ GGUF suffix (after "blk.N.").
constexpr std::array<std::pair<std::string_view, std::string_view>, 16> kLayerTensors = {{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_proj.bias", "ffn_gate.bias"},
    {"mlp.up_proj.bias", "ffn_up.bias"},
    {"mlp.down_proj.bias", "ffn_down.bias"},
}};

constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kGlobalTensors = {{
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
}};

// Splits "<prefix>N.<rest>" into (N, rest).
std::optional<std::pair<int64_t, std::string>> split_layer(const std::string& name, std::string_view prefix) {
  if (name.rfind(prefix, 0) != 0) return std::nullopt;
  size_t pos = prefix.size();
  int64_t layer = 0;
  const size_t digits_begin = pos;
  while (pos < name.size() && name[pos] >= '0' && name[pos] <= '9' && pos - digits_begin < 9)
    layer = layer * 10 + (name[pos++] - '0');
  if (pos == digits_begin || pos >= name.size() || name[pos] != '.') return std::nullopt;
  if (name[digits_begin] == '0' && pos - digits_begin > 1) return std::nullopt;  // "01" is not a layer number
  return std::make_pair(layer, name.substr(pos + 1));
}

}  // namespace

const Architecture& architecture_for(const Config& config, const std::string& context) {
  switch (config.family) {
    case Family::Llama:
    case Family::Mistral:
    case Family::Qwen2:
      if (!config.uniform_layers()) return kArchitectures[2];
      return config.family == Family::Qwen2 ? kArchitectures[1] : kArchitectures[0];
    default:
      break;
  }
  throw_error(ErrorKind::Unsupported, "{}: GGUF output supports the llama family (Llama, Mistral, Qwen2), not {}",
              context, family_name(config.family));
}

const Architecture* find_architecture(std::string_view gguf_name) {
  for (const auto& a : kArchitectures)
    if (a.gguf_name == gguf_name) return &a;
  return nullptr;
}

std::optional<Family> family_of_hf_class(std::string_view hf_class) {
  if (hf_class == "LlamaForCausalLM") return Family::Llama;
  if (hf_class == "MistralForCausalLM") return Family::Mistral;
  if (hf_class == "Qwen2ForCausalLM") return Family::Qwen2;
  return std::nullopt;
}

std::string arch_key(std::string_view arch, std::string_view suffix) {
  return std::string(arch) + "." + std::string(suffix);
}

std::optional<std::string> gguf_tensor_name(const std::string& hf_name) {
  for (const auto& [hf, gguf] : kGlobalTensors)
    if (hf_name == hf) return std::string(gguf);
  if (auto split = split_layer(hf_name, "model.layers.")) {
    for (const auto& [hf, gguf] : kLayerTensors)
      if (split->second == hf) return "blk." + std::to_string(split->first) + "." + std::string(gguf);
  }
  return std::nullopt;
}

std::optional<std::string> hf_tensor_name(const std::string& gguf_name) {
  for (const auto& [hf, gguf] : kGlobalTensors)
    if (gguf_name == gguf) return std::string(hf);
  if (auto split = split_layer(gguf_name, "blk.")) {
    for (const auto& [hf, gguf] : kLayerTensors)
      if (split->second == gguf) return names::layer_prefix(split->first) + std::string(hf);
  }
  return std::nullopt;
}

std::optional<int64_t> rope_heads_of(const std::string& hf_name, const Config& config) {
  auto split = split_layer(hf_name, "model.layers.");
  if (!split || split->first >= config.num_layers) return std::nullopt;
  const auto& rest = split->second;
  if (rest == "self_attn.q_proj.weight" || rest == "self_attn.q_proj.bias") return config.heads(split->first);
  if (rest == "self_attn.k_proj.weight" || rest == "self_attn.k_proj.bias") return config.kv_heads(split->first);
  return std::nullopt;
}

Tensor regroup_rope_rows(const Tensor& tensor, int64_t n_heads, bool to_gguf) {
  const int64_t rows = tensor.shape().empty() ? 0 : tensor.shape()[0];
  if (n_heads <= 0 || rows % n_heads != 0 || (rows / n_heads) % 2 != 0)
    throw_error(ErrorKind::BadInput, "tensor '{}': {} rows cannot be split into {} heads of an even size",
                tensor.name(), rows, n_heads);
  const int64_t head_dim = rows / n_heads, half = head_dim / 2;
  const size_t row_bytes = rows == 0 ? 0 : tensor.nbytes() / static_cast<size_t>(rows);
  std::vector<uint8_t> out(tensor.nbytes());
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t j = 0; j < half; ++j)
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t hf_row = h * head_dim + s * half + j;      // (head, 2, head_dim/2)
        const int64_t gguf_row = h * head_dim + j * 2 + s;       // (head, head_dim/2, 2)
        const int64_t from = to_gguf ? hf_row : gguf_row;
        const int64_t to = to_gguf ? gguf_row : hf_row;
        std::memcpy(out.data() + static_cast<size_t>(to) * row_bytes,
                    tensor.data() + static_cast<size_t>(from) * row_bytes, row_bytes);
      }
  return Tensor::owned(tensor.name(), tensor.shape(), tensor.dtype(), std::move(out));
}

std::vector<float> llama3_rope_factors(const Config& config) {
  const RopeScaling& r = config.rope_scaling;
  const double low_wavelen = static_cast<double>(r.original_max_position) / r.low_freq_factor;
  const double high_wavelen = static_cast<double>(r.original_max_position) / r.high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < config.head_dim; i += 2) {
    const double freq = 1.0 / std::pow(config.rope_theta, static_cast<double>(i) / static_cast<double>(config.head_dim));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double factor;
    if (wavelen < high_wavelen) {
      factor = 1.0;
    } else if (wavelen > low_wavelen) {
      factor = r.factor;
    } else {
      const double smooth = (static_cast<double>(r.original_max_position) / wavelen - r.low_freq_factor) /
                            (r.high_freq_factor - r.low_freq_factor);
      factor = 1.0 / ((1.0 - smooth) / r.factor + smooth);
    }
    factors.push_back(static_cast<float>(factor));
  }
  return factors;
}

RopeScaling fit_llama3_rope_scaling(const std::vector<float>& factors, const Config& config) {
  RopeScaling r;
  r.type = RopeScalingType::Llama3;
  double max_factor = 1.0;
  for (float f : factors) max_factor = std::max(max_factor, static_cast<double>(f));
  r.factor = max_factor;
  if (max_factor <= 1.0 + 1e-6) return r;
  // In the smooth band s = 1/f mapped to [0,1] is linear in the frequency: s = a·freq + b with
  // a = orig/(2π(high−low)) and b = −low/(high−low). Least squares over the band's points.
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < factors.size(); ++i) {
    const double f = factors[i];
    if (f <= 1.0 + 1e-4 || f >= max_factor * (1.0 - 1e-4)) continue;
    const double s = (1.0 / f - 1.0 / max_factor) / (1.0 - 1.0 / max_factor);
    const double freq =
        1.0 / std::pow(config.rope_theta, static_cast<double>(2 * i) / static_cast<double>(config.head_dim));
    n += 1, sx += freq, sy += s, sxx += freq * freq, sxy += freq * s;
  }
  const double det = n * sxx - sx * sx;
  if (n < 2 || det <= 0) return r;
  const double a = (n * sxy - sx * sy) / det, b = (sy - a * sx) / n;
  if (!(b < 0) || !(a > 0)) return r;
  r.low_freq_factor = 1.0;
  r.high_freq_factor = 1.0 - 1.0 / b;
  r.original_max_position = std::llround(-2.0 * std::numbers::pi * a / b);
  return r;
}

}  // namespace slmopt::gguf_arch
