// Private to io/: the one registry of what llama.cpp calls things for the llama family — architecture names,
// metadata keys, tensor names — and the two layout translations between Hugging Face and GGUF tensors (the Q/K
// RoPE row regrouping, and Llama-3 RoPE scaling as a rope_freqs tensor).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slmopt/ir/config.h"
#include "slmopt/ir/tensor.h"

namespace slmopt::gguf_arch {

struct Architecture {
  std::string_view gguf_name;   // general.architecture
  Family family;                // the family a file of this architecture loads as (unless slmopt.hf_architecture
                                // names another of the llama family)
  std::string_view hf_class;    // the Hugging Face class it loads as
  // llama.cpp's "llama" graph rotates interleaved pairs (the original Meta layout); Hugging Face checkpoints
  // rotate halves. convert_hf_to_gguf.py regroups Q/K rows for "llama" only: "qwen2" uses NEOX-style RoPE,
  // which is the Hugging Face layout already.
  bool regroup_rope_rows;
};

// The architecture a config is written as: Mistral as "llama", as llama.cpp's converter does; a config whose
// layers differ in head, KV-head or FFN counts as "deci" (llama.cpp's DeciLM / Nemotron architecture), the one
// llama-style graph of llama.cpp that sizes each layer's tensors from the per-layer arrays — its "llama" and
// "qwen2" graphs read the arrays but size every layer like layer 0. Throws Error(Unsupported) for families GGUF
// output does not handle.
const Architecture& architecture_for(const Config& config, const std::string& context);
// nullptr for an architecture slmopt cannot load.
const Architecture* find_architecture(std::string_view gguf_name);
// The llama-family family a Hugging Face class name stands for (nullopt for other names).
std::optional<Family> family_of_hf_class(std::string_view hf_class);

// Metadata keys.
inline constexpr std::string_view kArchitecture = "general.architecture";
inline constexpr std::string_view kName = "general.name";
inline constexpr std::string_view kAlignment = "general.alignment";
inline constexpr std::string_view kFileType = "general.file_type";
inline constexpr std::string_view kQuantizationVersion = "general.quantization_version";
// slmopt's own keys, for what GGUF has no key for; llama.cpp ignores them.
inline constexpr std::string_view kHfArchitecture = "slmopt.hf_architecture";
inline constexpr std::string_view kRopeLlama3Factor = "slmopt.rope.llama3.factor";
inline constexpr std::string_view kRopeLlama3LowFreqFactor = "slmopt.rope.llama3.low_freq_factor";
inline constexpr std::string_view kRopeLlama3HighFreqFactor = "slmopt.rope.llama3.high_freq_factor";
inline constexpr std::string_view kRopeLlama3OriginalContext = "slmopt.rope.llama3.original_max_position";

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

inline constexpr std::string_view kRopeFreqsTensor = "rope_freqs.weight";

// Canonical (Hugging Face) name → GGUF name ("model.layers.3.mlp.up_proj.weight" → "blk.3.ffn_up.weight");
// nullopt for names with no GGUF counterpart.
std::optional<std::string> gguf_tensor_name(const std::string& hf_name);
// The inverse; nullopt for GGUF names slmopt does not know.
std::optional<std::string> hf_tensor_name(const std::string& gguf_name);

// Which rows of a Q or K projection (weight [heads·head_dim, in] or bias [heads·head_dim]) need regrouping, and
// for how many heads; nullopt for every other tensor.
std::optional<int64_t> rope_heads_of(const std::string& hf_name, const Config& config);

// Regroups rows per head from the Hugging Face order (n_heads, 2, head_dim/2) to llama.cpp's (n_heads,
// head_dim/2, 2), or back. Works on whole rows of any dtype (quantized rows move as bytes); returns an owned
// tensor with the same name, shape and dtype.
Tensor regroup_rope_rows(const Tensor& tensor, int64_t n_heads, bool to_gguf);

// Llama-3 RoPE scaling as llama.cpp applies it: one factor per rotated pair (head_dim/2 values), computed from
// the config the way convert_hf_to_gguf.py does (each inverse frequency is divided by its factor).
std::vector<float> llama3_rope_factors(const Config& config);
// Recovers Llama-3 scaling parameters from a rope_freqs tensor written without slmopt's keys: the factor is
// the largest value and the smooth band gives the rest (with low_freq_factor normalised to 1). Falls back to
// the Llama-3.1 defaults with that factor when the band has fewer than two points.
RopeScaling fit_llama3_rope_scaling(const std::vector<float>& factors, const Config& config);

}  // namespace slmopt::gguf_arch
