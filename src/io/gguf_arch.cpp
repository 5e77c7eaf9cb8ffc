// What every llama.cpp architecture shares (see gguf_arch.h): the lookups over the architecture rows (each
// defined in its family's file, families/<name>.cpp, collected by the family registry), the check of a
// description against a row, the canonical ↔ GGUF tensor names, and the layout transforms.
#include "gguf_arch.h"

#include <array>
#include <cmath>
#include <cstring>
#include <numbers>

#include "family.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::gguf_arch {
namespace {

const Architecture& by_name(std::string_view name) {
  for (const auto& a : gguf_architecture_rows())
    if (a.gguf_name == name) return a;
  throw_error(ErrorKind::Internal, "GGUF architecture table has no '{}'", name);
}

// llama.cpp's only llama-style graph that sizes each layer from the per-layer arrays ("deci").
const Architecture& per_layer_host() {
  for (const auto& a : gguf_architecture_rows())
    if (a.per_layer_widths) return a;
  throw_error(ErrorKind::Internal, "GGUF architecture table has no architecture with per-layer widths");
}

// Per-layer tensors: canonical suffix (after "model.layers.N.") ↔ GGUF suffix (after "blk.N."), names from
// llama.cpp's LLM_TENSOR_NAMES.
constexpr std::array<std::pair<std::string_view, std::string_view>, 24> kLayerTensors = {{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"input_layernorm.bias", "attn_norm.bias"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"post_attention_layernorm.bias", "ffn_norm.bias"},
    {"attn_post_norm.weight", "post_attention_norm.weight"},
    {"ffn_post_norm.weight", "post_ffw_norm.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
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
    // Fused forms (only as whole GGUF names; the parts are listed by fused_tensors).
    {"", "attn_qkv.weight"},
    {"", "attn_qkv.bias"},
}};

const std::pair<std::string, std::string> kGlobalTensors[] = {
    {names::kEmbedTokens, "token_embd.weight"},     {names::kPositionEmbedding, "position_embd.weight"},
    {names::kFinalNorm, "output_norm.weight"},      {names::kFinalNormBias, "output_norm.bias"},
    {names::kLmHead, "output.weight"},              {names::kLmHeadBias, "output.bias"},
};

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

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

[[noreturn]] void refuse(const Architecture& arch, const std::string& context, const std::string& what) {
  throw_error(ErrorKind::Unsupported, "{}: llama.cpp's {} graph {}", context, arch.gguf_name, what);
}

bool close(double a, double b) { return std::abs(a - b) <= 1e-5 * std::max(std::abs(a), std::abs(b)); }

}  // namespace

const Architecture& architecture_of_family(const std::string& family) {
  return by_name(family_definition(family).gguf_architecture);
}

const Architecture& architecture_for(const Config& config, const std::string& context) {
  const Architecture& own = architecture_of_family(config.family);
  try {
    check_config(own, config, context);
    return own;
  } catch (const Error&) {
    // "deci" hosts the families whose own graph is the llama block (llama, qwen2) whatever their widths (per-layer counts from structured pruning, or
    // heads × head_dim ≠ hidden after a uniform head cut, which the qwen2 graph cannot size); its graph rotates
    // interleaved pairs, so rows are regrouped for it.
    const Architecture& deci = per_layer_host();
    const bool llama_shaped = own.norm_kind == deci.norm_kind && own.norm_placement == deci.norm_placement &&
                              own.residual == deci.residual && own.mlp == deci.mlp && own.qk_norm == deci.qk_norm &&
                              own.norm_unit_offset == deci.norm_unit_offset && own.position == deci.position &&
                              !own.multipliers && own.no_rope_step == 0;
    if (&own != &deci && llama_shaped) {
      try {
        check_config(deci, config, context);
        return deci;
      } catch (const Error&) {
      }
    }
    throw;
  }
}

void check_config(const Architecture& a, const Config& c, const std::string& ctx) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) refuse(a, ctx, what);
  };
  need(c.norm_kind == a.norm_kind, a.norm_kind == NormKind::RmsNorm ? "uses RMSNorm, the model LayerNorm"
                                                                     : "uses LayerNorm, the model RMSNorm");
  need(c.norm_bias == a.norm_bias, a.norm_bias ? "needs norm biases" : "has no norm biases");
  need(c.norm_unit_offset == a.norm_unit_offset,
       a.norm_unit_offset ? "stores norms as 1 + w, the model's norms are plain" : "has no (1 + w) norms");
  need(c.norm_placement == a.norm_placement, "places its norms differently from the model (norm placement)");
  need(c.residual_layout == a.residual, "has a different residual layout (parallel vs sequential)");
  need(c.mlp_kind == a.mlp, "has a different MLP kind (SwiGLU / GeGLU / GELU)");
  need(c.qk_norm == a.qk_norm, "has a different q/k norm (none / per head / whole projection)");
  need(c.position_kind == a.position, "uses a different position encoding (RoPE vs learned)");
  need(!c.attention_bias || a.qkv_bias, "has no q/k/v biases");
  need(!c.attention_out_bias || a.out_bias, "has no attention output bias");
  need(!c.mlp_bias || a.mlp_bias, "has no MLP biases");
  if (a.biases_required) {
    need(c.attention_out_bias, "requires an attention output bias");
    need(c.mlp_bias, "requires MLP biases");
    need(c.attention_bias || !a.fused_qkv, "requires q/k/v biases");
  }
  need(!c.lm_head_bias || a.head_bias, "has no output head bias");
  need(c.lm_head_bias || !a.head_bias_required, "requires an output head bias");
  need(c.tie_word_embeddings || a.head != Head::TiedOnly, "always ties the output head to token_embd");
  need(!a.q_width_is_hidden || c.heads(0) * c.head_dim == c.hidden_size,
       "sizes attn_output {hidden, hidden}: heads × head_dim must equal hidden_size");
  need(c.uniform_layers() || a.per_layer_widths, "sizes every layer like layer 0 (per-layer widths)");

  if (c.position_kind == PositionKind::Rope) {
    need(c.rotary_dims() == c.head_dim || a.partial_rotary, "rotates all of head_dim (partial rotary)");
    switch (c.rope_scaling.type) {
      case RopeScalingType::None:
      case RopeScalingType::Linear: break;
      case RopeScalingType::Llama3: need(a.rope_freqs, "has no Llama-3 RoPE scaling (rope_freqs)"); break;
      case RopeScalingType::LongRope: need(a.longrope, "has no LongRoPE factors"); break;
    }
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const bool llama_nope = a.no_rope_step > 0 && (l + 1) % a.no_rope_step == 0;
      if (c.layer_uses_rope(l) == llama_nope)
        refuse(a, ctx, llama_nope ? fmt::format("runs layer {} without RoPE (every {}th layer), the model with it", l,
                                                a.no_rope_step)
                                  : fmt::format("applies RoPE on layer {}, which the model runs without (NoPE)", l));
    }
  }

  bool any_local = false, any_global = false;
  for (int64_t l = 0; l < c.num_layers; ++l) (c.layer_is_sliding(l) ? any_local : any_global) = true;
  if (a.swa == Swa::Ignored) {
    need(!any_local || !any_global, "has no per-layer sliding windows (local and global layers)");
  } else if (any_local) {
    const int64_t local = [&] {
      for (int64_t l = 0; l < c.num_layers; ++l)
        if (c.layer_is_sliding(l)) return l;
      return int64_t{0};
    }();
    need(c.layer_rope_theta(local) == c.rope_theta || a.swa_rope_base, "has one RoPE base for all layers");
    if (c.rope_scaling.type != RopeScalingType::None)
      need(c.layer_rope_scaled(local) == a.swa_rope_scaled,
           a.swa_rope_scaled ? "scales RoPE on local layers too" : "does not scale RoPE on local layers");
  }
  need(c.attn_softcap == 0 || a.attn_softcap, "has no attention-score soft-capping");
  need(c.attn_softcap > 0 || !a.attn_softcap, "always soft-caps attention scores");
  need(c.final_logit_softcap == 0 || a.final_softcap, "has no final logit soft-capping");
  need(c.final_logit_softcap > 0 || !a.final_softcap_always, "always soft-caps the logits");
  if (a.embedding_scale_sqrt_hidden)
    need(close(c.embedding_scale, std::sqrt(static_cast<double>(c.hidden_size))),
         "scales embeddings by sqrt(hidden_size), the model by another factor");
  else
    need(c.embedding_scale == 1 || a.multipliers, "has no embedding multiplier");
  need(c.residual_scale == 1 || a.multipliers, "has no residual multiplier");
  need(c.logit_scale == 1 || a.multipliers, "has no logit multiplier");
  if (a.attn_scale != AttnScale::Key)
    need(close(c.attention_scale(), llama_cpp_attention_scale(a, c)),
         fmt::format("scales attention scores by {} (fixed), the model by {} (attention scale)",
                     llama_cpp_attention_scale(a, c), c.attention_scale()));
}

double llama_cpp_attention_scale(const Architecture& a, const Config& c) {
  const double per_head = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  if (a.attn_scale == AttnScale::Key) return c.attention_scale();
  if (a.attn_scale == AttnScale::Gemma) {
    // llama.cpp's LLM_TYPE_27B (a layer count per architecture) uses 1/sqrt(hidden / heads).
    if (c.num_layers == a.gemma_hidden_scale_layers)
      return 1.0 / std::sqrt(static_cast<double>(c.hidden_size / c.heads(0)));
  }
  return per_head;
}

std::vector<uint8_t> no_rope_layers(const Architecture& a, int64_t n_layers) {
  std::vector<uint8_t> out(static_cast<size_t>(n_layers), 0);
  if (a.no_rope_step > 0)
    for (int64_t l = 0; l < n_layers; ++l) out[static_cast<size_t>(l)] = (l + 1) % a.no_rope_step == 0;
  return out;
}

std::vector<uint8_t> default_swa_layers(const Architecture& a, int64_t n_layers) {
  std::vector<uint8_t> out(static_cast<size_t>(n_layers), 1);
  const int64_t n = a.swa_default_pattern;
  if (n > 0)
    for (int64_t l = 0; l < n_layers; ++l) out[static_cast<size_t>(l)] = l % n < n - 1;
  return out;
}

const Architecture* find_architecture(std::string_view gguf_name) {
  for (const auto& a : gguf_architecture_rows())
    if (a.gguf_name == gguf_name) return &a;
  return nullptr;
}

std::string supported_architectures() {
  std::string out;
  for (const auto& a : gguf_architecture_rows()) out += (out.empty() ? "" : ", ") + std::string(a.gguf_name);
  return out;
}

std::optional<std::string> family_of_hf_class(std::string_view hf_class) {
  if (const FamilyDefinition* f = find_family_by_hf_architecture(std::string(hf_class))) return f->name;
  return std::nullopt;
}

std::string arch_key(std::string_view arch, std::string_view suffix) {
  return std::string(arch) + "." + std::string(suffix);
}

std::optional<std::string> gguf_tensor_name(const std::string& canonical) {
  for (const auto& [hf, gguf] : kGlobalTensors)
    if (canonical == hf) return gguf;
  if (auto split = split_layer(canonical, "model.layers.")) {
    for (const auto& [hf, gguf] : kLayerTensors)
      if (!hf.empty() && split->second == hf) return "blk." + std::to_string(split->first) + "." + std::string(gguf);
  }
  return std::nullopt;
}

std::optional<std::string> canonical_tensor_name(const std::string& gguf_name) {
  for (const auto& [hf, gguf] : kGlobalTensors)
    if (gguf_name == gguf) return hf;
  if (auto split = split_layer(gguf_name, "blk.")) {
    for (const auto& [hf, gguf] : kLayerTensors)
      if (!hf.empty() && split->second == gguf) return names::layer_prefix(split->first) + std::string(hf);
  }
  return std::nullopt;
}

std::optional<int64_t> layer_of(const std::string& canonical) {
  if (auto split = split_layer(canonical, "model.layers.")) return split->first;
  return std::nullopt;
}

std::vector<FusedTensor> fused_tensors(const Architecture& a, const Config& c, int64_t l) {
  std::vector<FusedTensor> out;
  const std::string blk = "blk." + std::to_string(l) + ".";
  if (a.fused_qkv) {
    out.push_back({blk + "attn_qkv.weight", {names::q_proj(l), names::k_proj(l), names::v_proj(l)}});
    if (c.attention_bias) out.push_back({blk + "attn_qkv.bias", {names::q_bias(l), names::k_bias(l), names::v_bias(l)}});
  }
  if (a.fused_gate_up) {
    out.push_back({blk + "ffn_up.weight", {names::gate_proj(l), names::up_proj(l)}});
    if (c.mlp_bias) out.push_back({blk + "ffn_up.bias", {names::gate_bias(l), names::up_bias(l)}});
  }
  return out;
}

std::optional<std::pair<int64_t, FusedTensor>> fused_tensor_named(const Architecture& a, const Config& c,
                                                                  const std::string& gguf_name) {
  const auto split = split_layer(gguf_name, "blk.");
  if (!split || split->first >= c.num_layers) return std::nullopt;
  const int64_t l = split->first;
  const std::string& role = split->second;
  for (FusedTensor& f : fused_tensors(a, c, l))
    if (f.gguf_name == gguf_name) return std::make_pair(l, std::move(f));
  if (role == "attn_qkv.weight")
    return std::make_pair(l, FusedTensor{gguf_name, {names::q_proj(l), names::k_proj(l), names::v_proj(l)}});
  if (role == "attn_qkv.bias")
    return std::make_pair(l, FusedTensor{gguf_name, {names::q_bias(l), names::k_bias(l), names::v_bias(l)}});
  if (a.fused_gate_up && role == "ffn_up.bias")
    return std::make_pair(l, FusedTensor{gguf_name, {names::gate_bias(l), names::up_bias(l)}});
  return std::nullopt;
}

bool is_norm_weight(const std::string& canonical) {
  return canonical.size() > 7 && ends_with(canonical, "norm.weight");
}

std::optional<int64_t> rope_heads_of(const std::string& canonical, const Config& config) {
  auto split = split_layer(canonical, "model.layers.");
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
  // A matrix with no columns (shape [rows, 0]) has no bytes and may have no buffer: nothing to move.
  if (tensor.nbytes() == 0) return Tensor::owned(tensor.name(), tensor.shape(), tensor.dtype(), {});
  const int64_t head_dim = rows / n_heads, half = head_dim / 2;
  const size_t row_bytes = tensor.nbytes() / static_cast<size_t>(rows);
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

Tensor slice_rows(const Tensor& tensor, int64_t row_begin, int64_t row_end, std::string name) {
  const int64_t rows = tensor.shape().empty() ? 0 : tensor.shape()[0];
  if (row_begin < 0 || row_end > rows || row_begin > row_end)
    throw_error(ErrorKind::BadInput, "tensor '{}' has {} rows, not the {} its parts need", tensor.name(), rows, row_end);
  const size_t row_bytes = rows == 0 ? 0 : tensor.nbytes() / static_cast<size_t>(rows);
  std::vector<int64_t> shape = tensor.shape();
  shape[0] = row_end - row_begin;
  const uint8_t* begin = tensor.data() + static_cast<size_t>(row_begin) * row_bytes;
  return Tensor::owned(std::move(name), std::move(shape), tensor.dtype(),
                       std::vector<uint8_t>(begin, begin + static_cast<size_t>(row_end - row_begin) * row_bytes));
}

Tensor stack_rows(const std::vector<Tensor>& parts, std::string name) {
  std::vector<int64_t> shape = parts.at(0).shape();
  std::vector<uint8_t> bytes;
  shape[0] = 0;
  for (const Tensor& p : parts) {
    std::vector<int64_t> tail = p.shape(), want = parts[0].shape();
    tail[0] = want[0] = 0;
    if (p.dtype() != parts[0].dtype() || tail != want)
      throw_error(ErrorKind::BadInput, "tensor '{}' cannot be stacked with '{}' (dtype or row width differs)", p.name(),
                  parts[0].name());
    shape[0] += p.shape()[0];
    bytes.insert(bytes.end(), p.data(), p.data() + p.nbytes());
  }
  return Tensor::owned(std::move(name), std::move(shape), parts[0].dtype(), std::move(bytes));
}

Tensor add_offset(const Tensor& tensor, float offset) {
  std::vector<float> values = tensor.to_f32();
  for (float& v : values) v += offset;
  return Tensor::from_f32(tensor.name(), tensor.shape(), values);
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
