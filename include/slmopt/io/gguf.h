// Model ↔ GGUF for the llama family, in the form llama.cpp loads: Llama and Mistral as architecture "llama"
// (Q/K rows regrouped for llama.cpp's interleaved RoPE), Qwen2 as "qwen2" (no regrouping: llama.cpp runs it
// with NEOX-style RoPE, the Hugging Face layout), and any of them with per-layer head / KV-head / FFN counts
// (structured pruning) as "deci", the llama.cpp architecture whose graph sizes each layer from the per-layer
// arrays (its "llama" and "qwen2" graphs size every layer like layer 0). Tensor names follow llama.cpp (token_embd, blk.N.attn_q, ...,
// output omitted when tied), dims are reversed (ggml order), and the tokenizer goes into tokenizer.ggml.* keys
// ("llama" for SentencePiece-style vocabularies with scores, "gpt2" with merges and a pre-tokenizer name).
// The reader undoes all of it: canonical Hugging Face names and layouts, Config and Vocab rebuilt from metadata.
// GPT-2 (family "gpt2") is one row of the same table: llama.cpp's "gpt2" architecture (fused attn_qkv,
// position_embd, LayerNorm biases). A model without a tokenizer (any family) gets a placeholder token list (see
// add_placeholder_vocab in src/io/gguf_model_writer.cpp) and reads back without one.
//
// Keys slmopt writes for what GGUF cannot say (llama.cpp ignores them): slmopt.hf_architecture (e.g.
// "MistralForCausalLM"), slmopt.rope.llama3.* (Llama-3 scaling parameters beside the rope_freqs tensor
// llama.cpp reads), slmopt.tokenizer.split_regex / .ignore_merges.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "slmopt/ir/dtype.h"
#include "slmopt/ir/model.h"
#include "slmopt/ir/tensor.h"

namespace slmopt {

// llama.cpp's enum llama_ftype (general.file_type) values for whole-model types; not the ggml type ids.
enum class LlamaFileType : int32_t {
  AllF32 = 0, MostlyF16 = 1, MostlyQ4_0 = 2, MostlyQ4_1 = 3, MostlyQ8_0 = 7, MostlyQ5_0 = 8, MostlyQ5_1 = 9,
  MostlyQ2_K = 10, MostlyQ3_K_S = 11, MostlyQ3_K_M = 12, MostlyQ3_K_L = 13, MostlyQ4_K_S = 14, MostlyQ4_K_M = 15,
  MostlyQ5_K_S = 16, MostlyQ5_K_M = 17, MostlyQ6_K = 18, MostlyIQ4_NL = 25, MostlyBF16 = 32,
  MostlyIQ2_XXS = 19, MostlyIQ2_XS = 20, MostlyIQ3_XS = 22, MostlyIQ3_XXS = 23, MostlyIQ1_S = 24, MostlyIQ3_S = 26,
  MostlyIQ3_M = 27, MostlyIQ2_S = 28, MostlyIQ2_M = 29, MostlyIQ4_XS = 30, MostlyIQ1_M = 31,
};

// The file type llama.cpp reports for a model whose weights are mostly `dtype` (the _M mix for K-quants).
LlamaFileType llama_file_type_for(DType dtype);

struct GgufWriteOptions {
  std::string name;                          // general.name; empty → config.name
  std::optional<LlamaFileType> file_type;    // empty → from the dtype holding most weight elements
  uint32_t alignment = 32;                   // general.alignment (a power of two)
  // Chooses the stored dtype of each 2-D tensor from its canonical (Hugging Face) name and IR tensor; empty
  // keeps the IR dtype. 1-D tensors (norms, biases) are always stored as F32, as llama.cpp expects.
  std::function<DType(const std::string& name, const Tensor& tensor)> choose_dtype;
  // Encodes a tensor into a quantized dtype (F32/F16/BF16 are converted here, with ggml's rounding). The tensor
  // it receives carries its canonical name and its rows already in GGUF order; the result must hold exactly
  // Tensor::bytes_for(shape, dtype) bytes. Needed only when a tensor must become a quantized type it is not in.
  std::function<std::vector<uint8_t>(const Tensor& tensor, DType dtype)> encode;
  // The streaming form of `encode`, preferred when set: hands the encoded bytes to `write` in row chunks (adding
  // up to Tensor::bytes_for(shape, dtype)), so the output is never held whole.
  std::function<void(const Tensor& tensor, DType dtype, const std::function<void(const uint8_t*, size_t)>& write)>
      encode_streamed;
};

// Writes `model` (validated first) as a GGUF v3 file through AtomicFile, one tensor at a time: a tensor is
// converted (in row chunks for float targets and for encode_streamed) just before it is written, and the pages
// of mapped input it has read are dropped behind it, so peak memory stays near one chunk plus, without
// encode_streamed, one converted tensor. Throws
// Error(Unsupported) for a description no llama.cpp graph computes, a tensor name llama.cpp has no name for, or a
// quantized target without an encoder.
void write_gguf(const Model& model, const std::string& path, const GgufWriteOptions& options = {});

// Throws Error(Unsupported) naming `context` and the field when no llama.cpp architecture slmopt writes computes
// `config`'s description (what write_gguf would refuse before writing anything). Lets a pass refuse an output
// early, e.g. a prune cut the model's GGUF graph cannot size.
void check_gguf_architecture(const Config& config, const std::string& context);

// Loads a GGUF file of any architecture of the table (the rows in src/io/families/) into the IR. Tensors are
// zero-copy views into the mapped file (quantized ones stay quantized; Tensor::to_f32 decodes) except the Q/K
// projections of "llama" files, whose rows are regrouped back into the Hugging Face order in owned copies
// ("llama" and "deci" files).
Model load_gguf(const std::string& path);

}  // namespace slmopt
