// The GPT-2 family (GPT2LMHeadModel) in Hugging Face form: config.json fields → Config, the tensor set a config
// implies, and loading a checkpoint folder (safetensors) into the IR.
//
// IR layout: the canonical decoder names (ir/tensor_names.h) and PyTorch [out, in] matrices, with the decoder
// description LayerNorm + bias, learned positions, GELU (tanh) MLP without a gate, biases everywhere, tied head:
//
//   Hugging Face (transformer. prefix optional)   IR
//   wte.weight / wpe.weight                        model.embed_tokens.weight / model.embed_positions.weight
//   h.N.ln_1.{weight,bias}                         model.layers.N.input_layernorm.{weight,bias}
//   h.N.attn.c_attn.{weight,bias} (Conv1D)         self_attn.{q,k,v}_proj.{weight,bias}: rows Q, K, V split
//   h.N.attn.c_proj.{weight,bias} (Conv1D)         self_attn.o_proj.{weight,bias}
//   h.N.ln_2.{weight,bias}                         post_attention_layernorm.{weight,bias}
//   h.N.mlp.c_fc.{weight,bias} (Conv1D)            mlp.up_proj.{weight,bias}
//   h.N.mlp.c_proj.{weight,bias} (Conv1D)          mlp.down_proj.{weight,bias}
//   ln_f.{weight,bias}                             model.norm.{weight,bias}
//
// Conv1D layers store [in, out] and are transposed once at load. The causal-mask buffers (attn.bias,
// attn.masked_bias) are dropped; lm_head is tied to wte.
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

// The decoder description every GPT-2 model has (LayerNorm + bias, learned positions, GELU, biases, tied head).
void set_gpt2_description(Config& config);

// Stores `tensor`, given under its Hugging Face GPT-2 name ("transformer.h.N.attn.c_attn.weight", …) and already in
// the [out, in] layout, under its canonical name(s): c_attn is split into q/k/v (weights as views, no copy).
// Error(BadInput) for a name outside GPT-2.
void add_gpt2_tensor(Model& model, const std::string& hf_name, Tensor tensor);

// Throws Error(BadInput) naming `source` and the tensor when one is missing or mis-shaped, or an extra
// tensor is present.
void check_gpt2_tensors(const Model& model, const std::string& source);

// Transposes a 2-D tensor (any float dtype) into an owned F32 tensor named `name` with shape [cols, rows].
Tensor transposed_f32(const Tensor& t, const std::string& name);

// The inverse of the loading map: the model's tensors under Hugging Face GPT-2 names ("transformer." prefix), Conv1D
// weights back in [in, out] (F32) with q/k/v fused into c_attn, ready for a safetensors file.
std::vector<Tensor> gpt2_hf_tensors(const Model& model);

// Loads a GPT-2 checkpoint folder (config.json, model.safetensors or shards, optional tokenizer files).
Model load_hf_gpt2_model(const std::string& dir);

}  // namespace slmopt
