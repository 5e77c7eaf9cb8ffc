// Random llama-family models built in memory, for tests and benchmarks that must not depend on files: every
// tensor the config implies (per-layer widths included), filled from a seeded generator so runs repeat.
// Header-only so the benchmarks can include it too.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::testing {

// A llama Config with the given shape and no biases, scaling or tying.
inline Config llama_config(int64_t hidden, int64_t ffn, int64_t layers, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, int64_t vocab) {
  Config c;
  c.family = "llama";
  c.architecture = "LlamaForCausalLM";
  c.name = "synthetic";
  c.hidden_size = hidden;
  c.intermediate_size = ffn;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.vocab_size = vocab;
  c.max_position = 4096;
  c.norm_eps = 1e-5;
  return c;
}

// Weights uniform in ±1.5/sqrt(fan_in) (activations stay O(1)), norms 1 ± 0.2, biases ±0.3, embeddings ±1.
// Stored in `dtype` (F32, F16 or BF16).
inline Model make_random_llama(const Config& config, uint32_t seed, DType dtype = DType::F32) {
  std::mt19937 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return static_cast<float>(lo + (hi - lo) * static_cast<double>(rng() >> 8) / static_cast<double>(1u << 24));
  };
  Model model;
  model.config = config;
  model.source_format = "synthetic";
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double lo, double hi) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    for (float& v : values) v = uniform(lo, hi);
    model.set(Tensor::from_f32_as(name, std::move(shape), values, dtype));
  };
  auto add_linear = [&](const std::string& name, int64_t out, int64_t in) {
    const double r = 1.5 / std::sqrt(static_cast<double>(in));
    add(name, {out, in}, -r, r);
  };
  const int64_t h = config.hidden_size, hd = config.head_dim;
  add(names::kEmbedTokens, {config.vocab_size, h}, -1, 1);
  add(names::kFinalNorm, {h}, 0.8, 1.2);
  if (!config.tie_word_embeddings) add_linear(names::kLmHead, config.vocab_size, h);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const int64_t q = config.heads(l) * hd, kv = config.kv_heads(l) * hd, ff = config.ffn(l);
    add(names::attn_norm(l), {h}, 0.8, 1.2);
    add(names::ffn_norm(l), {h}, 0.8, 1.2);
    add_linear(names::q_proj(l), q, h);
    add_linear(names::k_proj(l), kv, h);
    add_linear(names::v_proj(l), kv, h);
    add_linear(names::o_proj(l), h, q);
    add_linear(names::gate_proj(l), ff, h);
    add_linear(names::up_proj(l), ff, h);
    add_linear(names::down_proj(l), h, ff);
    if (config.attention_bias) {
      add(names::q_bias(l), {q}, -0.3, 0.3);
      add(names::k_bias(l), {kv}, -0.3, 0.3);
      add(names::v_bias(l), {kv}, -0.3, 0.3);
    }
    if (config.attention_out_bias) add(names::o_bias(l), {h}, -0.3, 0.3);
  }
  model.validate();
  return model;
}

// Token ids 0..vocab-1 drawn from a seeded generator.
inline std::vector<int32_t> random_tokens(int64_t count, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return tokens;
}

}  // namespace slmopt::testing
