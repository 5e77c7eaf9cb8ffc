// The GPT-2 family (GPT2LMHeadModel) in Hugging Face form: config.json fields → Config, the tensor set a config
// implies, and loading a checkpoint folder (safetensors) into the IR.
//
// IR layout: Hugging Face names with the "transformer." prefix (checkpoints saved without it, like the original
// openai-community/gpt2, get it added) and PyTorch [out, in] matrices: GPT-2's Conv1D layers store [in, out],
// so c_attn, attn.c_proj, c_fc and mlp.c_proj are transposed once at load (names::gpt2 in ir/tensor_names.h).
// The causal-mask buffers (attn.bias, attn.masked_bias) are dropped; lm_head is tied to wte.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "slmopt/ir/model.h"

namespace slmopt {

// config.json of a GPT-2 model (n_embd, n_layer, n_head, n_inner, n_positions, vocab_size,
// layer_norm_epsilon, activation_function gelu_new/gelu_pytorch_tanh). Error(BadInput) naming the field,
// Error(Unsupported) for other activations or scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn.
Config parse_gpt2_config(const nlohmann::json& json, const std::string& source);

// config.json text for a GPT-2 Config (what parse_gpt2_config reads back).
std::string gpt2_config_json(const Config& config);

// True when the config.json object describes a GPT-2 model (architectures[0] or model_type).
bool is_gpt2_config(const nlohmann::json& json);

// Every IR tensor of a GPT-2 config with its shape.
std::vector<std::pair<std::string, std::vector<int64_t>>> gpt2_tensor_shapes(const Config& config);
// Throws Error(BadInput) naming `source` and the tensor when one is missing or mis-shaped, or an extra
// tensor is present.
void check_gpt2_tensors(const Model& model, const std::string& source);

// Transposes a 2-D tensor (any float dtype) into an owned F32 tensor named `name` with shape [cols, rows].
Tensor transposed_f32(const Tensor& t, const std::string& name);

// Loads a GPT-2 checkpoint folder (config.json, model.safetensors or shards, optional tokenizer files).
Model load_hf_gpt2_model(const std::string& dir);

}  // namespace slmopt
