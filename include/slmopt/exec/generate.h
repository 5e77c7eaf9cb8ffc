// Generation with a KV cache: greedy decoding (the smoke test of a model end to end, and what llama.cpp's greedy
// sampler does) and seeded sampling with temperature, top-k and top-p.
//
// Sampling order, per step: the logits' top-k tokens (all when k = 0; ties broken towards the lower id), softmax
// of logits / temperature over them in double, then the smallest prefix of the tokens sorted by probability whose
// mass reaches top_p (all when top_p >= 1), renormalised; one uniform draw u in [0, 1) from a 64-bit Mersenne
// Twister seeded with `seed` (53 high bits of one output: the same on every platform) picks the token whose
// cumulative probability first exceeds u. Temperature 0 is greedy (argmax, the lowest id on ties). So the same
// model, prompt and options give the same tokens at any thread count (the logits are thread-count independent).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "slmopt/exec/model_runner.h"

namespace slmopt {

// Feeds `prompt` (at least one token), then repeatedly appends the most likely next token, up to
// max_new_tokens or until stop_token is produced (included in the result). Returns the new tokens only.
std::vector<int32_t> generate_greedy(const ModelRunner& runner, std::span<const int32_t> prompt,
                                     int64_t max_new_tokens, std::optional<int32_t> stop_token = std::nullopt);

struct SamplingOptions {
  int64_t max_new_tokens = 32;
  double temperature = 0;  // 0: greedy
  int64_t top_k = 0;       // 0: all tokens
  double top_p = 1.0;      // 1: no nucleus cut
  uint64_t seed = 0;
  std::optional<int32_t> stop_token;  // included in the result when produced
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // the new tokens only
  // Per step: the logit of the most likely token minus the runner-up's. A small margin marks a near tie, where
  // another implementation's rounding (llama.cpp quantizes activations for its Q8_0 products) may pick the other.
  std::vector<float> margins;
  double prompt_seconds = 0;    // feeding the prompt
  double decode_seconds = 0;    // every later step
};

GenerationResult generate(const ModelRunner& runner, std::span<const int32_t> prompt, const SamplingOptions& options);

// One sampling step on a logits row (exposed for tests): `u` is the uniform draw in [0, 1).
int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, double u);

}  // namespace slmopt
