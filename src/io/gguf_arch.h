// Private to io/: what llama.cpp calls things — for every llama.cpp architecture slmopt writes or reads: the
// decoder block its graph computes (as the Config description fields), the metadata keys it reads, the tensors
// its loader accepts, and the layout transforms between the IR (Hugging Face names and layouts) and its tensors.
// Each architecture's row (Architecture) lives in the file of the family that owns it (families/<name>.cpp, see
// family.h); this header and gguf_arch.cpp hold what is common to all of them. Every fact comes from the
// llama.cpp version the consumer tests run (node-llama-cpp's bundled source): src/llama-arch.cpp (names),
// src/models/<arch>.cpp (keys, tensors, graph), src/llama-model.cpp (shared keys, RoPE type) and
// conversion/*.py (what convert_hf_to_gguf.py writes).
//
// Layout transforms:
//   * Q/K rows: llama.cpp's "normal" RoPE (llama, deci, granite, smollm3) rotates interleaved pairs; Hugging Face
//     rotates halves. The rows are regrouped per head (n_heads, 2, head_dim/2) → (n_heads, head_dim/2, 2); NEOX
//     architectures keep the Hugging Face order.
//   * Gemma norms: the IR keeps Hugging Face's w (the norm scales by 1 + w); GGUF stores 1 + w (every *norm.weight,
//     q/k norms included, as convert_hf_to_gguf.py does).
//   * Fused tensors: Phi-3's ffn_up holds [gate; up] rows (llama.cpp splits it in its SwiGLU); GPT-2's attn_qkv
//     holds [q; k; v] rows (its loader requires the fused tensor).
//   * RoPE scaling as tensors: Llama-3 scaling as rope_freqs (one divisor per rotated pair), Phi-3 LongRoPE as
//     rope_factors_short / rope_factors_long.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slmopt/ir/config.h"
#include "slmopt/ir/tensor.h"

namespace slmopt::gguf_arch {

enum class Head {
  Optional,  // output.weight when untied; llama.cpp reuses token_embd otherwise
  Required,  // llama.cpp's loader needs output.weight: a tied model gets a copy (and slmopt.tied_output)
  TiedOnly,  // llama.cpp always uses token_embd (Gemma-2)
};

enum class Swa {
  Ignored,  // the graph attends every position: the window key is written for the round trip only (exact up to
            // the window)
  Pattern,  // attention.sliding_window + a per-layer bool array attention.sliding_window_pattern
};

enum class AttnScale {
  Default,  // 1/sqrt(head_dim)
  Key,      // attention.scale (0 = default) — Granite
  Gemma,    // 1/sqrt(head_dim), or 1/sqrt(hidden/heads) for the 27B shapes (llama.cpp picks by layer count)
};

struct Architecture {
  std::string_view gguf_name;  // general.architecture
  // Filled by the registry from the owning family (left empty in the family file): the family a file of this
  // architecture loads as (unless slmopt.hf_architecture names one this architecture hosts), and its class.
  std::string_view family;
  std::string_view hf_class;

  // The block llama.cpp's graph computes.
  NormKind norm_kind;
  NormPlacement norm_placement;
  ResidualLayout residual;
  MlpKind mlp;
  QkNormKind qk_norm;
  bool norm_unit_offset;  // GGUF stores 1 + w
  PositionKind position;
  bool interleaved_rope;  // llama.cpp's "normal" RoPE: Q/K rows regrouped
  bool partial_rotary;    // rope.dimension_count < head_dim is honoured

  // Tensors its loader accepts beyond the block's weights.
  bool qkv_bias, out_bias, mlp_bias, norm_bias;
  bool biases_required;     // the loader requires every bias it accepts (phi2: o and MLP; gpt2: all)
  Head head;
  bool head_bias;           // output.bias accepted (required by phi2)
  bool head_bias_required;
  bool fused_qkv;           // attn_qkv only (gpt2)
  bool fused_gate_up;       // ffn_up = [gate; up], no ffn_gate (phi3)
  bool q_width_is_hidden;   // attn_output is sized {hidden, hidden}: heads × head_dim must equal hidden
  bool per_layer_widths;    // sizes each layer's tensors from the per-layer arrays (deci)

  // Keys and tensors for the description fields.
  bool rope_freqs;          // Llama-3 scaling through a rope_freqs tensor
  bool longrope;            // rope_factors_long/short + rope.scaling.attn_factor
  Swa swa;
  uint32_t swa_default_pattern;  // llama.cpp's default when the pattern key is absent (n: layer il is local iff
                                 // il % n < n − 1), 0 = every layer local
  int64_t swa_default_window;  // the window when the key is absent; > 0: local layers exist even without the
                               // key (gemma2: 4096, with the default pattern)
  bool swa_rope_base;       // rope.freq_base_swa read for local layers
  bool swa_rope_scaled;     // local layers get rope scaling too (gemma2) — otherwise they skip it
  bool attn_softcap;        // attn_logit_softcapping (default 50 when absent)
  bool final_softcap;       // final_logit_softcapping read
  bool final_softcap_always;  // applied even when absent (default 30) — gemma2
  bool multipliers;         // embedding_scale, residual_scale, attention.scale, logit_scale (required) — granite
  bool embedding_scale_sqrt_hidden;  // embeddings × sqrt(hidden), no key (Gemma)
  AttnScale attn_scale;
  int64_t gemma_hidden_scale_layers;  // AttnScale::Gemma: llama.cpp's 27B type (this layer count) scales scores by
                                      // 1/sqrt(hidden / heads) instead of 1/sqrt(head_dim)
  int no_rope_step;         // layer il has no RoPE iff (il + 1) % step == 0 (smollm3: 4); 0 = RoPE everywhere
};

// The architecture `config` is written as: the family's own, or "deci" for a llama-shaped model whose layers
// differ in head, KV-head or FFN counts (llama.cpp's only llama-style graph that sizes each layer from the arrays).
// Throws Error(Unsupported) naming `context` and the field when llama.cpp's graph for it would compute something
// other than the description (e.g. a Gemma attention scale its graph does not use, or a NoPE pattern SmolLM3's
// graph does not have).
const Architecture& architecture_for(const Config& config, const std::string& context);
// nullptr for an architecture slmopt cannot load.
const Architecture* find_architecture(std::string_view gguf_name);
// The family a Hugging Face class name stands for (nullopt for other names).
std::optional<std::string> family_of_hf_class(std::string_view hf_class);
// The architecture a family is written as (when its layers are uniform).
const Architecture& architecture_of_family(const std::string& family);
// Names of every architecture the reader accepts, for error messages.
std::string supported_architectures();
// Throws Error(Unsupported) naming `context` and the field when `arch`'s graph differs from `config`.
void check_config(const Architecture& arch, const Config& config, const std::string& context);
// llama.cpp's attention scale for `arch` and the shape of `config`.
double llama_cpp_attention_scale(const Architecture& arch, const Config& config);
// Per layer: 1 when llama.cpp runs layer il without RoPE (no_rope_step).
std::vector<uint8_t> no_rope_layers(const Architecture& arch, int64_t n_layers);
// Per layer: 1 when llama.cpp makes layer il local under the default pattern.
std::vector<uint8_t> default_swa_layers(const Architecture& arch, int64_t n_layers);

// Metadata keys.
inline constexpr std::string_view kArchitecture = "general.architecture";
inline constexpr std::string_view kName = "general.name";
inline constexpr std::string_view kAlignment = "general.alignment";
inline constexpr std::string_view kFileType = "general.file_type";
inline constexpr std::string_view kQuantizationVersion = "general.quantization_version";
// slmopt's own keys, for what GGUF has no key for; llama.cpp ignores them.
inline constexpr std::string_view kHfArchitecture = "slmopt.hf_architecture";
inline constexpr std::string_view kTiedOutput = "slmopt.tied_output";  // output.weight is a copy of token_embd
inline constexpr std::string_view kRopeLlama3Factor = "slmopt.rope.llama3.factor";
inline constexpr std::string_view kRopeLlama3LowFreqFactor = "slmopt.rope.llama3.low_freq_factor";
inline constexpr std::string_view kRopeLlama3HighFreqFactor = "slmopt.rope.llama3.high_freq_factor";
inline constexpr std::string_view kRopeLlama3OriginalContext = "slmopt.rope.llama3.original_max_position";
inline constexpr std::string_view kRopeLongRopeFactor = "slmopt.rope.longrope.factor";
inline constexpr std::string_view kPlaceholderVocab = "slmopt.tokenizer.placeholder";

// Tokenizer keys.
inline constexpr std::string_view kTokenizerModel = "tokenizer.ggml.model";
inline constexpr std::string_view kTokenizerPre = "tokenizer.ggml.pre";
inline constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
inline constexpr std::string_view kScores = "tokenizer.ggml.scores";
inline constexpr std::string_view kTokenTypes = "tokenizer.ggml.token_type";
inline constexpr std::string_view kMerges = "tokenizer.ggml.merges";
inline constexpr std::string_view kBosId = "tokenizer.ggml.bos_token_id";
inline constexpr std::string_view kEosId = "tokenizer.ggml.eos_token_id";
inline constexpr std::string_view kUnkId = "tokenizer.ggml.unknown_token_id";
inline constexpr std::string_view kPadId = "tokenizer.ggml.padding_token_id";
inline constexpr std::string_view kAddBos = "tokenizer.ggml.add_bos_token";
inline constexpr std::string_view kAddEos = "tokenizer.ggml.add_eos_token";
inline constexpr std::string_view kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
inline constexpr std::string_view kChatTemplate = "tokenizer.chat_template";
inline constexpr std::string_view kSplitRegex = "slmopt.tokenizer.split_regex";
inline constexpr std::string_view kIgnoreMerges = "slmopt.tokenizer.ignore_merges";
// The tokenizer.json pipeline ({"normalizer", "pre_tokenizer"}) when the vocabulary came from one.
inline constexpr std::string_view kTokenizerPipeline = "slmopt.tokenizer.pipeline";

// "<arch>.<suffix>", e.g. arch_key("llama", "context_length").
std::string arch_key(std::string_view arch, std::string_view suffix);

// Tensors that are not IR tensors.
inline constexpr std::string_view kRopeFreqsTensor = "rope_freqs.weight";
inline constexpr std::string_view kRopeFactorsLong = "rope_factors_long.weight";
inline constexpr std::string_view kRopeFactorsShort = "rope_factors_short.weight";
inline constexpr std::string_view kOutputTensor = "output.weight";

// Canonical name → GGUF name ("model.layers.3.mlp.up_proj.weight" → "blk.3.ffn_up.weight"); nullopt for names
// with no GGUF counterpart. Fused architectures map the parts elsewhere (see fused_parts).
std::optional<std::string> gguf_tensor_name(const std::string& canonical);
// The inverse; nullopt for GGUF names slmopt does not know.
std::optional<std::string> canonical_tensor_name(const std::string& gguf_name);
// The layer a canonical per-layer name belongs to ("model.layers.N." → N), nullopt for global tensors.
std::optional<int64_t> layer_of(const std::string& canonical);

// A GGUF tensor made of several IR tensors stacked by rows (attn_qkv, Phi-3's ffn_up).
struct FusedTensor {
  std::string gguf_name;
  std::vector<std::string> parts;  // canonical names, in row order
};
// The fused tensors `arch` stores for layer `layer` of `config` (empty when it fuses nothing).
std::vector<FusedTensor> fused_tensors(const Architecture& arch, const Config& config, int64_t layer);
// The fused tensor a file of `arch` may hold under `gguf_name`, with its layer; nullopt for any other name and for
// a layer past config.num_layers. Besides what fused_tensors lists: an attn_qkv weight or bias in every
// architecture, since llama.cpp's loader (create_tensor_qkv) takes one, and an ffn_up.bias where gate and up are
// fused, since biases are known only from the tensors. Only the name's own layer is looked at, so reading a file
// costs what its tensors cost, not what its block_count claims.
std::optional<std::pair<int64_t, FusedTensor>> fused_tensor_named(const Architecture& arch, const Config& config,
                                                                  const std::string& gguf_name);

// Whether a canonical tensor is a norm weight (stored 1 + w by norm_unit_offset architectures).
bool is_norm_weight(const std::string& canonical);

// Which rows of a Q or K projection (weight [heads·head_dim, in] or bias [heads·head_dim]) need regrouping, and
// for how many heads; nullopt for every other tensor.
std::optional<int64_t> rope_heads_of(const std::string& canonical, const Config& config);

// Regroups rows per head from the Hugging Face order (n_heads, 2, head_dim/2) to llama.cpp's (n_heads,
// head_dim/2, 2), or back. Works on whole rows of any dtype (quantized rows move as bytes); returns an owned
// tensor with the same name, shape and dtype.
Tensor regroup_rope_rows(const Tensor& tensor, int64_t n_heads, bool to_gguf);
// Rows [row_begin, row_end) of a tensor of any dtype, as an owned tensor named `name`.
Tensor slice_rows(const Tensor& tensor, int64_t row_begin, int64_t row_end, std::string name);
// `parts` stacked by rows (all of one dtype and row width), named `name`.
Tensor stack_rows(const std::vector<Tensor>& parts, std::string name);
// Adds `offset` to every value of an F32 (1-D norm) tensor.
Tensor add_offset(const Tensor& tensor, float offset);

// Llama-3 RoPE scaling as llama.cpp applies it: one factor per rotated pair (head_dim/2 values), computed from
// the config the way convert_hf_to_gguf.py does (each inverse frequency is divided by its factor).
std::vector<float> llama3_rope_factors(const Config& config);
// Recovers Llama-3 scaling parameters from a rope_freqs tensor written without slmopt's keys: the factor is
// the largest value and the smooth band gives the rest (with low_freq_factor normalised to 1). Falls back to
// the Llama-3.1 defaults with that factor when the band has fewer than two points.
RopeScaling fit_llama3_rope_scaling(const std::vector<float>& factors, const Config& config);

}  // namespace slmopt::gguf_arch
