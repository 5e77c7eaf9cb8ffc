// Hugging Face checkpoint folders: config.json + safetensors weights (single or sharded) + tokenizer.json /
// tokenizer_config.json + optional generation_config.json, read into the IR and written back out.
//
// Families: LlamaForCausalLM (also SmolLM2, Llama-3.2), MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
// PhiForCausalLM, Phi3ForCausalLM (Phi-3/3.5/4-mini), Gemma2ForCausalLM, Gemma3ForCausalLM, SmolLM3ForCausalLM,
// GraniteForCausalLM, Olmo2ForCausalLM (the registry is src/io/hf_family.h; each family has its own file with
// its config.json keys and its tensor-name table). The family comes from config.json "architectures"[0], or
// "model_type" when that list is absent. Fused checkpoint tensors (Phi-3's qkv_proj, gate_up_proj) load as row
// views of the mapped file under the canonical q/k/v and gate/up names and are fused again on write.
//
// Loading keeps every tensor a zero-copy view of the mapped safetensors file(s). Tied embeddings: the IR holds
// only model.embed_tokens.weight; a checkpoint that stores only lm_head.weight (directly, or aliased through
// the safetensors "__metadata__" map, as torch's shared-tensor saving does) is aliased to it. Buffers such as
// *.rotary_emb.inv_freq are dropped; any other tensor the config does not explain is an Error(BadInput), so a
// misnamed checkpoint never loads silently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "slmopt/ir/model.h"

namespace slmopt {

// config.json text → Config (validated). `source` names the file in errors: missing or ill-typed fields are
// an Error(BadInput) naming the field, an unknown architecture or rope_scaling type an Error(Unsupported).
Config parse_hf_config(const std::string& json_text, const std::string& source);

// config.json text for a Config with uniform layers (Error(Unsupported) for per-layer head/FFN counts, which
// Hugging Face configs cannot express). bos/eos ids come from the vocab when it has them; torch_dtype names
// the stored float type.
std::string hf_config_json(const Config& config, const Vocab& vocab, std::optional<DType> torch_dtype);

// Reads a checkpoint folder. model.config.name is the folder name, source_format "hf". A missing
// tokenizer.json is allowed (vocab kind None, with a warning).
Model load_hf_model(const std::string& dir);

struct HfWriteOptions {
  std::optional<DType> float_type;            // F32, F16 or BF16; nullopt keeps each tensor's float type
  uint64_t max_shard_bytes = 2000000000ull;   // shard model.safetensors beyond this (2 GB, as transformers)
};

// Writes a checkpoint folder that transformers and slmopt load. Everything goes to a temporary folder beside
// `dir`; a new `dir` appears whole, an existing model folder (config.json) gets only slmopt's files replaced —
// other files (special_tokens_map.json, an onnx/ export) stay, and a stale weight shard or tokenizer file the new
// checkpoint would not replace is refused rather than mixed. Any other existing `dir` is refused. Block-quantized
// tensors need options.float_type.
void write_hf_model(const Model& model, const std::string& dir, const HfWriteOptions& options = {});

// The check write_hf_model (and write_hf_quantized) run on an existing target before writing: it must be an empty
// folder or a model folder (config.json). Error(Usage) naming the folder otherwise. Stages run it before any work.
void check_hf_output_folder(const std::string& dir);

}  // namespace slmopt
