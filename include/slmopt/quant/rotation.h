// Rotations folded into the weights (QuaRot, Ashkboos et al. 2024; SpinQuant's R1/R2 without the learned part):
// an orthogonal change of basis of the residual stream and of each attention head's values, applied to the
// weights so that the model computes the same function — and stays an ordinary checkpoint that llama.cpp and
// ONNX Runtime run unchanged — while its weight matrices lose their outlier channels (a randomised Hadamard
// spreads every input channel over all of them), which is what makes them easier to round.
//
// With h the residual stream (a column), the rotated stream is h' = Qᵀh, Q orthogonal [hidden, hidden]:
//   1. every pre-norm's gain g is folded into the linears that read the norm (W ← W·diag(g); q/k/v from the
//      attention norm, gate/up from the MLP norm, the output head from the final norm) and the norm's gain becomes
//      1 (stored 0 for (1 + w) norms). A weightless RMSNorm commutes with Q: rms(Qᵀh) = rms(h).
//   2. embeddings (and learned positions) E ← E·Q; input projections (q, k, v, gate, up, lm_head) W ← W·Q; output
//      projections (o, down) W ← QᵀW and their biases b ← Qᵀb.
//   3. per head, P orthogonal [head_dim, head_dim]: v's rows (and bias) of each KV head v ← Pᵀv, o's input columns
//      of each query head W_o[:, head] ← W_o[:, head]·P (attention mixes v linearly over positions, so o sees Pᵀ
//      applied to its head's input; one P for every head keeps grouped-query sharing consistent).
// Q and P are randomised Hadamard transforms: D·(H_p/√p ⊗ R_m), D a diagonal of seeded ±1, p the largest power of
// two dividing the width, H_p Sylvester's Hadamard matrix and R_m a seeded random orthogonal m×m (Gaussian → QR)
// for the odd remainder m (576 = 64·9, 896 = 128·7, 96 = 32·3); m = 1 for power-of-two widths. Applied as a fast
// Walsh–Hadamard transform on p plus an m×m product: O(n·(log p + m)) per row.
//
// Valid for RMSNorm pre-norm blocks (sequential or parallel residual): Llama, Qwen2/3, Mistral, SmolLM2/3,
// Granite, Phi-3. q/k norms (Qwen3, Gemma-3, OLMo-2) act on q/k's outputs, which the residual rotation leaves
// unchanged. Refused, one line naming the reason: LayerNorm (mean subtraction and bias do not commute with a
// rotation: GPT-2, Phi-2), post-norms between a sublayer and the residual (Gemma-2/3 sandwich, OLMo-2: their
// gains multiply the residual's increments elementwise and cannot fold into a linear).
//
// Tied embeddings: the embedding needs E·Q, the head E·diag(g)·Q. They stay one matrix exactly only when the
// final norm's gain is uniform (g = c·1; the norm then keeps c). Otherwise `Untie` writes a separate head
// (vocab × hidden more parameters), `Keep` keeps the tie and replaces g by its mean (no longer the same function:
// the report measures what that costs), `Auto` unties unless the tie is exact.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"

namespace slmopt {

enum class TiedHeadRotation { Auto, Untie, Keep };

struct RotationOptions {
  uint64_t seed = 0;
  TiedHeadRotation tied = TiedHeadRotation::Auto;
  bool heads = true;  // also rotate V/O per head (step 3)
};

struct RotationReport {
  std::string residual;   // e.g. "randomised Hadamard 256 (H256)" or "randomised Hadamard 96 (H32 ⊗ random orthogonal 3)"
  std::string head;       // the same for P, empty when heads were not rotated
  bool was_tied = false;
  bool untied = false;        // a separate lm_head was written
  bool tie_exact = true;      // the tie kept the same function (final gain uniform) — false when Keep approximated
  double final_gain_spread = 0;  // max |g − mean g| / |mean g| of the final norm
};

// An orthogonal matrix M [n, n] = D·(H_p/√p ⊗ R_m) applied to row vectors (x ← x·M) in double precision.
class RandomizedHadamard {
 public:
  RandomizedHadamard(int64_t n, uint64_t seed);
  int64_t size() const { return n_; }
  int64_t power_of_two() const { return p_; }
  int64_t odd_factor() const { return m_; }
  std::string describe() const;
  // x (n values) ← x·M.
  void apply(double* x) const;

 private:
  int64_t n_ = 0, p_ = 1, m_ = 1;
  std::vector<double> signs_;  // D
  std::vector<double> r_;      // R_m, row-major m×m
};

// Empty when rotate_model can fold `config`, else the reason (one line, no trailing period).
std::string rotation_refusal(const Config& config);

// Rotates `model` in place (steps 1–3 above); rotated tensors are stored as F32. Throws Error(Usage) with
// rotation_refusal's reason for descriptions the fold is not valid for.
RotationReport rotate_model(Model& model, const RotationOptions& options);

// "auto", "untie", "keep" → the mode; throws Error(Usage) naming the option otherwise.
TiedHeadRotation tied_head_rotation_from_name(const std::string& name);

}  // namespace slmopt
