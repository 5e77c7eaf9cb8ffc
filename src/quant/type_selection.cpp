// Per-tensor type selection for the GGUF presets; the rules and their provenance are listed in
// quant/type_selection.h. The rule body mirrors llama.cpp's llama_tensor_get_type_impl for the llama
// architecture (dense, not Falcon): each branch below names the preset and tensor role it comes from.
#include "slmopt/quant/type_selection.h"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <regex>

#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

// llama_ftype values (llama.h): general.file_type of the written GGUF.
constexpr std::array<PresetInfo, 28> kPresets = {{
    {QuantPreset::F32, "F32", DType::F32, 0, "all weights F32"},
    {QuantPreset::F16, "F16", DType::F16, 1, "2-D weights F16"},
    {QuantPreset::BF16, "BF16", DType::BF16, 32, "2-D weights BF16"},
    {QuantPreset::Q4_0, "Q4_0", DType::Q4_0, 2, "4.5 bpw, symmetric 32-blocks; output Q6_K"},
    {QuantPreset::Q4_1, "Q4_1", DType::Q4_1, 3, "5.0 bpw, 32-blocks with minimum; output Q6_K"},
    {QuantPreset::Q5_0, "Q5_0", DType::Q5_0, 8, "5.5 bpw, symmetric 32-blocks; output Q6_K"},
    {QuantPreset::Q5_1, "Q5_1", DType::Q5_1, 9, "6.0 bpw, 32-blocks with minimum; output Q6_K"},
    {QuantPreset::Q8_0, "Q8_0", DType::Q8_0, 7, "8.5 bpw, nearly lossless"},
    {QuantPreset::Q2_K, "Q2_K", DType::Q2_K, 10, "Q2_K; Q3_K attn_v/ffn_down/attn_output (Q4_K attn_v with GQA>=4)"},
    {QuantPreset::Q3_K_S, "Q3_K_S", DType::Q3_K, 11, "Q3_K everywhere but the output"},
    {QuantPreset::Q3_K_M, "Q3_K_M", DType::Q3_K, 12, "Q3_K; Q4_K/Q5_K attn_v, ffn_down, attn_output"},
    {QuantPreset::Q3_K_L, "Q3_K_L", DType::Q3_K, 13, "Q3_K; Q5_K attn_v, ffn_down, attn_output"},
    {QuantPreset::Q4_K_S, "Q4_K_S", DType::Q4_K, 14, "Q4_K; Q5_K in the first attn_v and ffn_down layers"},
    {QuantPreset::Q4_K_M, "Q4_K_M", DType::Q4_K, 15, "Q4_K; Q6_K attn_v and ffn_down in use_more_bits layers"},
    {QuantPreset::Q5_K_S, "Q5_K_S", DType::Q5_K, 16, "Q5_K everywhere but the output"},
    {QuantPreset::Q5_K_M, "Q5_K_M", DType::Q5_K, 17, "Q5_K; Q6_K attn_v and ffn_down in use_more_bits layers"},
    {QuantPreset::Q6_K, "Q6_K", DType::Q6_K, 18, "6.6 bpw"},
    {QuantPreset::IQ1_S, "IQ1_S", DType::IQ1_S, 24, "1.56 bpw; needs an importance matrix"},
    {QuantPreset::IQ1_M, "IQ1_M", DType::IQ1_M, 31, "1.75 bpw; needs an importance matrix"},
    {QuantPreset::IQ2_XXS, "IQ2_XXS", DType::IQ2_XXS, 19, "2.06 bpw; needs an importance matrix"},
    {QuantPreset::IQ2_XS, "IQ2_XS", DType::IQ2_XS, 20, "2.31 bpw; needs an importance matrix"},
    {QuantPreset::IQ2_S, "IQ2_S", DType::IQ2_XS, 28, "IQ2_XS with IQ3_S attn_v/attn_output; needs an importance matrix"},
    {QuantPreset::IQ2_M, "IQ2_M", DType::IQ2_S, 29, "2.56 bpw IQ2_S; needs an importance matrix"},
    {QuantPreset::IQ3_XXS, "IQ3_XXS", DType::IQ3_XXS, 23, "3.06 bpw; needs an importance matrix"},
    {QuantPreset::IQ3_XS, "IQ3_XS", DType::IQ3_S, 22, "IQ3_S with IQ3_XXS attn_q/attn_k and middle ffn_gate/ffn_up; needs an importance matrix"},
    {QuantPreset::IQ3_S, "IQ3_S", DType::IQ3_S, 26, "3.44 bpw"},
    {QuantPreset::IQ3_M, "IQ3_M", DType::IQ3_S, 27, "IQ3_S; Q4_K attn_v, attn_output, first ffn_down"},
    {QuantPreset::IQ4_XS, "IQ4_XS", DType::IQ4_XS, 30, "4.25 bpw non-linear"},
}};

// llama.cpp's broad tensor categories (llama-quant.cpp's tensor_category), for the llama family.
enum class Role { TokenEmbd, Output, AttnQ, AttnK, AttnV, AttnOutput, FfnGate, FfnUp, FfnDown, Norm, Other };

struct TensorRole {
  Role role = Role::Other;
  int64_t layer = -1;
};

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Canonical per-layer suffix → (GGUF suffix, role).
struct LayerTensor {
  std::string_view hf, gguf;
  Role role;
};
constexpr std::array<LayerTensor, 11> kLayerTensors = {{
    {"self_attn.q_proj.", "attn_q.", Role::AttnQ},
    {"self_attn.k_proj.", "attn_k.", Role::AttnK},
    {"self_attn.v_proj.", "attn_v.", Role::AttnV},
    {"self_attn.o_proj.", "attn_output.", Role::AttnOutput},
    {"mlp.gate_proj.", "ffn_gate.", Role::FfnGate},
    {"mlp.up_proj.", "ffn_up.", Role::FfnUp},
    {"mlp.down_proj.", "ffn_down.", Role::FfnDown},
    {"input_layernorm.", "attn_norm.", Role::Norm},
    {"post_attention_layernorm.", "ffn_norm.", Role::Norm},
    {"self_attn.q_norm.", "attn_q_norm.", Role::Norm},
    {"self_attn.k_norm.", "attn_k_norm.", Role::Norm},
}};

// Splits "model.layers.N.rest" into N and rest.
bool split_layer_name(const std::string& name, int64_t& layer, std::string& rest) {
  static constexpr std::string_view kPrefix = "model.layers.";
  if (!starts_with(name, kPrefix)) return false;
  size_t i = kPrefix.size(), digits = 0;
  int64_t value = 0;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && digits < 9) {
    value = value * 10 + (name[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0 || i >= name.size() || name[i] != '.') return false;
  layer = value;
  rest = name.substr(i + 1);
  return true;
}

TensorRole classify(const std::string& name) {
  if (name == names::kEmbedTokens) return {Role::TokenEmbd, -1};
  if (name == names::kLmHead) return {Role::Output, -1};
  if (name == names::kFinalNorm) return {Role::Norm, -1};
  int64_t layer;
  std::string rest;
  if (split_layer_name(name, layer, rest))
    for (const auto& t : kLayerTensors)
      if (starts_with(rest, t.hf)) {
        // Only weights carry llama.cpp's categories ("attn_v.weight"); biases are plain 1-D tensors.
        const bool weight = rest == std::string(t.hf) + "weight";
        return {weight || t.role == Role::Norm ? t.role : Role::Other, layer};
      }
  return {Role::Other, -1};
}

// llama.cpp quantizes tensors with at least two dimensions whose name ends in "weight", except norms.
bool quantizable(const TensorDesc& t, Role role) {
  return t.shape.size() >= 2 && ends_with(t.name, "weight") && role != Role::Norm &&
         t.name.find("norm") == std::string::npos;
}

// use_more_bits from llama.cpp: the first and last eighth of the layers and every third layer in between.
bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string type_name(DType t) { return std::string(dtype_name(t)); }

struct ModelFacts {
  int64_t n_layer = 0;
  int64_t n_gqa = 1;
  bool is_70b = false;
  bool tied = true;  // no output head: the embedding is used as output (llama.cpp: has_tied_embeddings)
  std::map<size_t, int64_t> attn_v_ordinal, ffn_down_ordinal, ffn_gate_ordinal, ffn_up_ordinal;  // tensor index →
                                                                                                   // llama.cpp's counter
  int64_t n_attention_wv = 0;
};

bool is_iq_low_preset(QuantPreset p) {  // llama.cpp's IQ2/IQ1 branch
  using enum QuantPreset;
  return p == IQ2_XXS || p == IQ2_XS || p == IQ1_S || p == IQ2_S || p == IQ2_M || p == IQ1_M;
}

// The rules of llama_tensor_get_type_impl for the i-quant presets, for the tensors other than the output head
// (dense llama, not MoE). Returns the base when no rule applies.
DType apply_iq_rules(QuantPreset p, DType base, Role role, size_t index, const ModelFacts& m, bool has_importance,
                     std::string& reason) {
  using enum QuantPreset;
  const bool iq2s = p == IQ2_S || p == IQ2_M;
  auto set = [&](DType t, const std::string& why) {
    reason = why;
    return t;
  };
  if (role == Role::TokenEmbd) {
    if (p == IQ2_XXS || p == IQ2_XS || p == IQ1_S || p == IQ1_M) return set(DType::Q2_K, "token_embd, IQ1/IQ2 mix");
    if (iq2s || p == IQ3_XXS) return set(DType::IQ3_S, "token_embd, " + std::string(preset_info(p).name) + " mix");
    return base;
  }
  if (is_iq_low_preset(p)) {
    if (role == Role::AttnV) {
      if (m.n_gqa >= 4) return set(DType::Q4_K, "attn_v, IQ1/IQ2 mix with GQA >= 4");
      return set(iq2s ? DType::IQ3_S : DType::Q2_K, "attn_v, IQ1/IQ2 mix");
    }
    if (role == Role::FfnDown && m.ffn_down_ordinal.at(index) < m.n_layer / 8)
      return set(iq2s ? DType::IQ3_S : DType::Q2_K, "ffn_down, first eighth of the IQ1/IQ2 mix");
    if (role == Role::AttnOutput && (p == IQ1_S || p == IQ1_M)) return set(DType::IQ2_XXS, "attn_output, IQ1 mix");
    if (role == Role::AttnOutput && iq2s) return set(DType::IQ3_S, "attn_output, IQ2_S/IQ2_M mix");
    return base;
  }
  if (role == Role::AttnV) {
    if (p == IQ3_XXS) {
      if (m.n_gqa >= 4) return set(DType::Q4_K, "attn_v, IQ3_XXS with GQA >= 4");
      return has_importance ? base : set(DType::IQ3_S, "attn_v, IQ3_XXS without an importance matrix");
    }
    if ((p == IQ3_XS || p == IQ3_S) && m.n_gqa >= 4) return set(DType::Q4_K, "attn_v, GQA >= 4");
    if (p == IQ3_M) return set(DType::Q4_K, "attn_v, IQ3_M");
    if (p == IQ4_XS && m.n_gqa >= 4) return set(DType::Q5_K, "attn_v, IQ4_XS with GQA >= 4");
    return base;
  }
  if (role == Role::AttnK || role == Role::AttnQ) {
    if (p == IQ3_XS) return set(DType::IQ3_XXS, "attn_q/attn_k, IQ3_XS");
    if (p == IQ3_XXS) return set(DType::IQ2_S, "attn_q/attn_k, IQ3_XXS");
    return base;
  }
  if (role == Role::FfnDown) {
    const int64_t i = m.ffn_down_ordinal.at(index), n = m.n_layer;
    if (p == IQ3_XXS && !has_importance)
      return set(i < n / 8 ? DType::Q4_K : DType::Q3_K, "ffn_down, IQ3_XXS without an importance matrix");
    if (p == IQ3_M && i < n / 8) return set(DType::Q4_K, "ffn_down, first eighth of IQ3_M");
    if (p == IQ4_XS && i < n / 8 && !has_importance)
      return set(DType::Q5_K, "ffn_down, first eighth of IQ4_XS without an importance matrix");
    return base;
  }
  if (role == Role::AttnOutput) {
    if (p == IQ3_XXS) return set(DType::IQ3_S, "attn_output, IQ3_XXS");
    if (p == IQ3_M) return set(DType::Q4_K, "attn_output, IQ3_M");
    return base;
  }
  if ((role == Role::FfnGate || role == Role::FfnUp) && p == IQ3_XS) {
    const int64_t i = (role == Role::FfnGate ? m.ffn_gate_ordinal : m.ffn_up_ordinal).at(index), n = m.n_layer;
    if (i >= n / 8 && i < 7 * n / 8) return set(DType::IQ3_XXS, "ffn_gate/ffn_up, middle layers of IQ3_XS");
  }
  return base;
}

// llama.cpp raises attn_v of a 70B-shaped model (8 heads per KV head) from Q3_K or Q4_K to Q5_K, after the
// preset's own attn_v rule, in both the k-quant and the i-quant mixes.
void promote_70b_attn_v(const ModelFacts& m, DType& type, std::string& reason) {
  if (!m.is_70b || (type != DType::Q3_K && type != DType::Q4_K)) return;
  type = DType::Q5_K;
  reason = "attn_v, 70B-shaped model (8 heads per KV head)";
}

// llama_tensor_get_type_impl for the presets slmopt offers (no MoE, not Falcon).
DType apply_preset_rules(QuantPreset p, DType base, Role role, size_t index, const TensorDesc& t,
                         const ModelFacts& m, bool has_importance, NarrowRows narrow, std::string& reason) {
  DType type = base;
  reason = "base " + type_name(base);
  const int64_t cols = t.shape.back();
  if (role == Role::Output || (m.tied && role == Role::TokenEmbd)) {
    const char* what = role == Role::Output ? "output head" : "tied embedding (used as output)";
    // llama.cpp gives a narrow output head Q8_0 outright; the size-class choice applies the usual rule and lets
    // the row-length fallback find the 32-element type of the same size.
    if (narrow == NarrowRows::Llama && cols % traits(base).block_size != 0) {
      type = DType::Q8_0;
      reason = std::string(what) + ": Q8_0, row length not a multiple of the base block";
    } else if (is_iq_low_preset(p) || p == QuantPreset::IQ3_XXS) {
      type = DType::Q5_K;
      reason = std::string(what) + ": Q5_K (IQ1/IQ2/IQ3_XXS mix)";
    } else if (base != DType::Q8_0) {
      type = DType::Q6_K;
      reason = std::string(what) + ": Q6_K";
    }
    return type;
  }
  if (static_cast<int>(p) >= static_cast<int>(QuantPreset::IQ1_S)) {  // the i-quant presets
    type = apply_iq_rules(p, base, role, index, m, has_importance, reason);
    if (role == Role::AttnV && !is_iq_low_preset(p)) promote_70b_attn_v(m, type, reason);
    return type;
  }
  if (role == Role::AttnV) {
    const int64_t i = m.attn_v_ordinal.at(index), n = m.n_attention_wv;
    using enum QuantPreset;
    if (p == Q2_K) {
      type = m.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
      reason = m.n_gqa >= 4 ? "attn_v, Q2_K mix with GQA >= 4" : "attn_v, Q2_K mix";
    } else if (p == Q3_K_M) {
      type = i < 2 ? DType::Q5_K : DType::Q4_K;
      reason = i < 2 ? "attn_v, first two layers of Q3_K_M" : "attn_v, Q3_K_M";
    } else if (p == Q3_K_L) {
      type = DType::Q5_K;
      reason = "attn_v, Q3_K_L";
    } else if ((p == Q4_K_M || p == Q5_K_M) && use_more_bits(i, n)) {
      type = DType::Q6_K;
      reason = "attn_v, use_more_bits(" + std::to_string(i) + " of " + std::to_string(n) + ")";
    } else if (p == Q4_K_S && i < 4) {
      type = DType::Q5_K;
      reason = "attn_v, first four layers of Q4_K_S";
    }
    promote_70b_attn_v(m, type, reason);
    return type;
  }
  if (role == Role::FfnDown) {
    const int64_t i = m.ffn_down_ordinal.at(index), n = m.n_layer;
    using enum QuantPreset;
    if (p == Q2_K) {
      type = DType::Q3_K;
      reason = "ffn_down, Q2_K mix";
    } else if (p == Q3_K_M) {
      // llama.cpp: Q5_K in the first sixteenth, else Q4_K (Q3_K only for Falcon outside use_more_bits).
      type = i < n / 16 ? DType::Q5_K : DType::Q4_K;
      reason = i < n / 16 ? "ffn_down, first sixteenth of Q3_K_M" : "ffn_down, Q3_K_M";
    } else if (p == Q3_K_L) {
      type = DType::Q5_K;
      reason = "ffn_down, Q3_K_L";
    } else if (p == Q4_K_M) {
      if (use_more_bits(i, n)) {
        type = DType::Q6_K;
        reason = "ffn_down, use_more_bits(" + std::to_string(i) + " of " + std::to_string(n) + ")";
      }
    } else if (p == Q5_K_M && use_more_bits(i, n)) {
      type = DType::Q6_K;
      reason = "ffn_down, use_more_bits(" + std::to_string(i) + " of " + std::to_string(n) + ")";
    } else if (p == Q4_K_S && i < n / 8) {
      type = DType::Q5_K;
      reason = "ffn_down, first eighth of Q4_K_S";
    } else if ((p == Q4_0 || p == Q5_0) && has_importance && i < n / 8) {
      type = p == Q4_0 ? DType::Q4_1 : DType::Q5_1;
      reason = "ffn_down, first eighth with an importance matrix";
    }
    return type;
  }
  if (role == Role::AttnOutput) {
    using enum QuantPreset;
    if (p == Q2_K) type = DType::Q3_K;
    if (p == Q3_K_M) type = DType::Q4_K;
    if (p == Q3_K_L) type = DType::Q5_K;
    if (type != base) reason = "attn_output, " + std::string(preset_info(p).name) + " mix";
  }
  return type;
}

// llama.cpp's tensor_type_fallback, with F16 where llama.cpp has no fallback; or (NarrowRows::SizeClass) the
// 32-element type of the same size class with the lowest error (see type_selection.h).
DType fallback_for_row_length(DType type, int64_t cols, NarrowRows narrow, std::string& reason) {
  const int64_t block = traits(type).block_size;
  if (cols % block == 0) return type;
  DType next = DType::F16;
  if (narrow == NarrowRows::SizeClass) switch (type) {
    case DType::Q2_K: case DType::Q3_K: case DType::IQ4_XS: case DType::IQ3_S: case DType::IQ3_XXS:
    case DType::IQ2_S: case DType::IQ2_XS: case DType::IQ2_XXS: case DType::IQ1_M:
    case DType::IQ1_S: next = DType::IQ4_NL; break;  // 4.5 bpw: the smallest 32-element type, non-uniform levels
    // Q4_K keeps llama.cpp's Q5_0: IQ4_NL instead saved 6 % of tinystories-656k's Q4_K_M file but tripled its KL.
    case DType::Q4_K: case DType::Q5_K: next = DType::Q5_0; break;  // 5.5 bpw
    case DType::Q6_K: next = DType::Q8_0; break;     // no 32-element type between 6.0 and 8.5 keeps Q6_K's error
    default: break;
  }
  else switch (type) {
    case DType::Q2_K:
    case DType::Q3_K: next = DType::Q4_0; break;
    case DType::Q4_K: next = DType::Q5_0; break;
    case DType::Q5_K: next = DType::Q5_1; break;
    case DType::Q6_K: next = DType::Q8_0; break;
    case DType::IQ4_XS: case DType::IQ3_S: case DType::IQ3_XXS: case DType::IQ2_S: case DType::IQ2_XS:
    case DType::IQ2_XXS: case DType::IQ1_M: case DType::IQ1_S: next = DType::IQ4_NL; break;
    default: break;
  }
  if (cols % traits(next).block_size != 0) next = DType::F16;
  reason += "; " + type_name(next) + " instead of " + type_name(type) + " (row of " + std::to_string(cols) +
            " is not a multiple of " + std::to_string(block) +
            (narrow == NarrowRows::SizeClass && next != DType::F16 ? "; the 32-element type of its size class)" : ")");
  return next;
}

bool glob_matches(const std::string& pattern, const std::string& name) {
  return !name.empty() && fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

// A compiled override pattern.
class OverrideMatcher {
 public:
  // `option` names the command-line option in error messages.
  explicit OverrideMatcher(const std::string& pattern, std::string_view option = "tensor pattern")
      : pattern_(pattern) {
    if (starts_with(pattern, "re:")) {
      try {
        regex_.emplace(pattern.substr(3), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw_error(ErrorKind::Usage, "{} '{}': bad regular expression ({})", option, pattern, e.what());
      }
    }
  }
  bool matches(const std::string& canonical, const std::string& gguf) const {
    if (regex_)
      return std::regex_search(canonical, *regex_) || (!gguf.empty() && std::regex_search(gguf, *regex_));
    return glob_matches(pattern_, canonical) || glob_matches(pattern_, gguf);
  }

 private:
  std::string pattern_;
  std::optional<std::regex> regex_;
};

ModelFacts model_facts(const Config& config, const std::vector<TensorDesc>& tensors,
                       const std::vector<TensorRole>& roles) {
  ModelFacts m;
  m.n_layer = config.num_layers;
  const int64_t kv = config.kv_heads(0);
  m.n_gqa = kv > 0 ? config.heads(0) / kv : 0;
  m.is_70b = (config.family == "llama" || config.family == "mistral") && config.num_layers == 80 &&
             config.num_heads != config.num_kv_heads;
  std::vector<size_t> attn_v, ffn_down, ffn_gate, ffn_up;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (roles[i].role == Role::Output) m.tied = false;
    if (!quantizable(tensors[i], roles[i].role)) continue;
    if (roles[i].role == Role::AttnV) attn_v.push_back(i);
    if (roles[i].role == Role::FfnDown) ffn_down.push_back(i);
    if (roles[i].role == Role::FfnGate) ffn_gate.push_back(i);
    if (roles[i].role == Role::FfnUp) ffn_up.push_back(i);
  }
  // llama.cpp visits tensors by layer, then by name, and counts attn_v and ffn_down as it goes.
  auto by_layer = [&](size_t a, size_t b) {
    return roles[a].layer != roles[b].layer ? roles[a].layer < roles[b].layer : tensors[a].name < tensors[b].name;
  };
  std::sort(attn_v.begin(), attn_v.end(), by_layer);
  for (auto* list : {&attn_v, &ffn_down, &ffn_gate, &ffn_up}) std::sort(list->begin(), list->end(), by_layer);
  for (size_t k = 0; k < attn_v.size(); ++k) m.attn_v_ordinal[attn_v[k]] = static_cast<int64_t>(k);
  for (size_t k = 0; k < ffn_down.size(); ++k) m.ffn_down_ordinal[ffn_down[k]] = static_cast<int64_t>(k);
  for (size_t k = 0; k < ffn_gate.size(); ++k) m.ffn_gate_ordinal[ffn_gate[k]] = static_cast<int64_t>(k);
  for (size_t k = 0; k < ffn_up.size(); ++k) m.ffn_up_ordinal[ffn_up[k]] = static_cast<int64_t>(k);
  m.n_attention_wv = static_cast<int64_t>(attn_v.size());
  return m;
}

}  // namespace

std::span<const PresetInfo> quant_presets() { return kPresets; }

const PresetInfo& preset_info(QuantPreset preset) {
  for (const auto& p : kPresets)
    if (p.preset == preset) return p;
  throw_error(ErrorKind::Internal, "unknown preset {}", static_cast<int>(preset));
}

std::optional<QuantPreset> preset_from_name(std::string_view name) {
  const std::string wanted = lower(name);
  for (const auto& p : kPresets)
    if (lower(p.name) == wanted) return p.preset;
  return std::nullopt;
}

TypeOverride parse_type_for(std::string_view spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size())
    throw_error(ErrorKind::Usage, "--type-for '{}': expected PATTERN=TYPE", spec);
  const std::string pattern(spec.substr(0, eq));
  const auto dtype = dtype_from_name(spec.substr(eq + 1));
  if (!dtype || (!traits(*dtype).is_quantized && *dtype != DType::F32 && *dtype != DType::F16 &&
                 *dtype != DType::BF16))
    throw_error(ErrorKind::Usage, "--type-for '{}': unknown tensor type '{}'", spec, spec.substr(eq + 1));
  OverrideMatcher check(pattern, "--type-for");  // reject a bad regex now, naming the option
  return {pattern, dtype};
}

TypeOverride parse_keep(std::string_view pattern) {
  if (pattern.empty()) throw_error(ErrorKind::Usage, "--keep: empty pattern");
  OverrideMatcher check{std::string(pattern), "--keep"};
  return {std::string(pattern), std::nullopt};
}

bool override_matches(const std::string& pattern, const std::string& canonical_name) {
  return OverrideMatcher(pattern).matches(canonical_name, gguf_tensor_name(canonical_name));
}

std::string gguf_tensor_name(const std::string& name) {
  if (name == names::kEmbedTokens) return "token_embd.weight";
  if (name == names::kLmHead) return "output.weight";
  if (name == names::kFinalNorm) return "output_norm.weight";
  int64_t layer;
  std::string rest;
  if (!split_layer_name(name, layer, rest)) return "";
  for (const auto& t : kLayerTensors)
    if (starts_with(rest, t.hf)) {
      const std::string tail = rest.substr(t.hf.size());
      if (tail != "weight" && tail != "bias") return "";
      return "blk." + std::to_string(layer) + "." + std::string(t.gguf) + tail;
    }
  return "";
}

std::vector<TypeChoice> select_tensor_types(const Config& config, const std::vector<TensorDesc>& tensors,
                                            const TypeSelectionOptions& options) {
  const PresetInfo& preset = preset_info(options.preset);
  std::vector<OverrideMatcher> matchers;
  for (const auto& o : options.overrides) matchers.emplace_back(o.pattern);
  std::vector<TensorRole> roles;
  for (const auto& t : tensors) roles.push_back(classify(t.name));
  const ModelFacts facts = model_facts(config, tensors, roles);

  std::vector<TypeChoice> out;
  out.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorDesc& t = tensors[i];
    TypeChoice c{t.name, t.dtype, ""};
    if (!quantizable(t, roles[i].role)) {
      const bool is_float = t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16;
      c.dtype = is_float ? DType::F32 : t.dtype;
      c.reason = t.shape.size() < 2 ? "1-D tensor, kept in F32" : "norm, kept in F32";
      out.push_back(std::move(c));
      continue;
    }
    const std::string gguf = gguf_tensor_name(t.name);
    const int64_t cols = t.shape.back();
    std::optional<size_t> matched;
    for (size_t k = 0; k < matchers.size() && !matched; ++k)
      if (matchers[k].matches(t.name, gguf)) matched = k;
    if (matched && !options.overrides[*matched].dtype) {
      c.dtype = t.dtype;
      c.reason = "kept as " + type_name(t.dtype) + " (--keep '" + options.overrides[*matched].pattern + "')";
      out.push_back(std::move(c));
      continue;
    }
    if (matched) {
      c.dtype = *options.overrides[*matched].dtype;
      c.reason = "--type-for '" + options.overrides[*matched].pattern + "'";
    } else if (!traits(preset.base).is_quantized) {
      c.dtype = preset.base;
      c.reason = "base " + type_name(preset.base);
    } else {
      c.dtype = apply_preset_rules(options.preset, preset.base, roles[i].role, i, t, facts, options.has_importance,
                                   options.narrow_rows,
                                   c.reason);
    }
    c.dtype = fallback_for_row_length(c.dtype, cols, options.narrow_rows, c.reason);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<TypeChoice> select_tensor_types(const Model& model, const TypeSelectionOptions& options) {
  std::vector<TensorDesc> descs;
  for (const Tensor* t : model.ordered_tensors()) descs.push_back({t->name(), t->shape(), t->dtype()});
  return select_tensor_types(model.config, descs, options);
}

}  // namespace slmopt
