// Per-tensor type choice for the GGUF presets ("mixes" such as Q4_K_M), following llama.cpp's
// llama_tensor_get_type for the llama architecture, plus user overrides.
//
// What a preset decides, per 2-D weight (norms, biases and every 1-D tensor stay F32):
//   * the base type (Q4_K for Q4_K_S/M, Q3_K for Q3_K_S/M/L, ...);
//   * llama.cpp's rules on top of it: the output head (or the tied embedding) gets Q6_K; attn_v / ffn_down get
//     more bits in some layers (use_more_bits: the first and last eighth of the layers and every third layer in
//     between, for Q4_K_M and Q5_K_M; the first layers for Q3_K_M, Q4_K_S; all layers for Q3_K_L); attn_output
//     goes up for Q2_K / Q3_K_M / Q3_K_L; GQA models (n_head / n_kv_head >= 4) get Q4_K attn_v for Q2_K; the
//     70B-shaped llama (80 layers, GQA) gets Q5_K attn_v where the mix says Q3_K/Q4_K; with an importance matrix,
//     Q4_0/Q5_0 give the first eighth of ffn_down Q4_1/Q5_1;
//   * the fallback when a row length is not a multiple of the type's block: Q2_K/Q3_K → Q4_0, Q4_K → Q5_0,
//     Q5_K → Q5_1, Q6_K → Q8_0 (as llama.cpp's tensor_type_fallback at node-llama-cpp's tag; older llama.cpp
//     sent Q2_K/Q3_K to IQ4_NL), and F16 when even that block does not fit. llama.cpp refuses a 32-element type
//     on rows that are not a multiple of 32; slmopt writes F16 there instead. That is NarrowRows::Llama; the
//     default, NarrowRows::SizeClass, keeps the file in the preset's size class instead: the types below 4.5
//     bpw (Q2_K, Q3_K, IQ4_XS and the lattice i-quants) → IQ4_NL (4.5 bpw, the smallest 32-element type; its
//     non-uniform levels have lower error than Q4_0's at the same size, and GPTQ rounds onto it), Q4_K and
//     Q5_K → Q5_0 (5.5 bpw; IQ4_NL for Q4_K saved 6 % of tinystories-656k's Q4_K_M file but tripled its KL), Q6_K → Q8_0 (no 32-element type between 6.0 and 8.5 bpw keeps Q6_K's
//     error); a narrow output head gets the preset's output type through the same fallback rather than
//     llama.cpp's Q8_0 outright (Q5_K → Q5_0 for the IQ1/IQ2/IQ3_XXS mixes).
// Rules are written against canonical Hugging Face names (ir/tensor_names.h), classified into llama.cpp's tensor
// roles (token_embd, attn_v, ffn_down, output, ...). Layer counters follow llama.cpp: attn_v tensors are
// counted in layer order, ffn_down layers against the model's layer count.
//
// Overrides apply to the tensors a preset would quantize (2-D weights), first match wins, and take the place of
// the preset's rules (the row-length fallback still applies):
//   --type-for PATTERN=TYPE   any DType name (q4_k, q8_0, f16, ...)
//   --keep PATTERN            leave the tensor in its current type (F32, F16, BF16, or an already quantized type)
// PATTERN is a glob (`*` any run of characters, `?` one character, `[...]` a class) matched against the whole
// canonical name or the whole GGUF name (model.layers.3.mlp.down_proj.weight or blk.3.ffn_down.weight); a
// pattern starting with `re:` is an ECMAScript regex searched in either name (llama.cpp's --tensor-type style).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slmopt/ir/config.h"
#include "slmopt/ir/dtype.h"
#include "slmopt/ir/model.h"

namespace slmopt {

enum class QuantPreset {
  F32, F16, BF16,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
  Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K,
  IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ3_XXS, IQ3_XS, IQ3_S, IQ3_M, IQ4_XS,
};

struct PresetInfo {
  QuantPreset preset;
  std::string_view name;    // as llama.cpp's quantize tool spells it: "Q4_K_M"
  DType base;               // the type most weights get
  int gguf_file_type;       // general.file_type (LLAMA_FTYPE_MOSTLY_*), not a ggml type id
  std::string_view summary;
};

std::span<const PresetInfo> quant_presets();
const PresetInfo& preset_info(QuantPreset preset);
std::optional<QuantPreset> preset_from_name(std::string_view name);  // case-insensitive

struct TypeOverride {
  std::string pattern;
  std::optional<DType> dtype;  // nullopt: keep the tensor's current type
};

// "PATTERN=TYPE" → override; Error(Usage) naming the option for a missing '=', an empty pattern, an unknown
// type or a bad regex.
TypeOverride parse_type_for(std::string_view spec);
TypeOverride parse_keep(std::string_view pattern);
// True when the pattern matches the canonical name or its GGUF name. Error(Usage) for a bad regex.
bool override_matches(const std::string& pattern, const std::string& canonical_name);

// What a row that is not a whole number of the chosen type's blocks gets (see the top of this file).
enum class NarrowRows { SizeClass, Llama };

struct TypeSelectionOptions {
  QuantPreset preset = QuantPreset::Q4_K_M;
  std::vector<TypeOverride> overrides;
  bool has_importance = false;  // an importance matrix is available (llama.cpp's imatrix-dependent rules)
  NarrowRows narrow_rows = NarrowRows::SizeClass;  // last: brace initialisers {preset, overrides, importance} stay valid
};

struct TensorDesc {
  std::string name;             // canonical
  std::vector<int64_t> shape;   // PyTorch order, [out, in]
  DType dtype = DType::F32;     // current type
};

struct TypeChoice {
  std::string name;
  DType dtype;
  std::string reason;  // why, for dry runs and reports: "base q4_k", "attn_v, use_more_bits", "fallback ..."
};

// One choice per tensor, in the order given. `config` supplies the layer count and head counts; the output head
// counts as tied when the list has no lm_head.weight.
std::vector<TypeChoice> select_tensor_types(const Config& config, const std::vector<TensorDesc>& tensors,
                                            const TypeSelectionOptions& options);
// The same for every tensor of a model, in model.ordered_tensors() order.
std::vector<TypeChoice> select_tensor_types(const Model& model, const TypeSelectionOptions& options);

// The GGUF name of a canonical llama-family tensor name ("blk.3.ffn_down.weight"); empty when unknown.
std::string gguf_tensor_name(const std::string& canonical_name);

}  // namespace slmopt
