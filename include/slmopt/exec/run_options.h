// What a caller can attach to a forward call: pruning masks applied inside the pass, and an observer that sees
// every linear layer's input (and optionally output) activations — the hook calibration builds on (importance
// matrices, GPTQ Hessians, AWQ statistics).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slmopt/exec/matrix.h"

namespace slmopt {

// Gates multiplied into the forward pass, for pruning studies. heads[l][h] scales query head h's attention
// output in layer l before o_proj (0 removes the head); ffn_channels[l][c] scales SwiGLU channel c before
// down_proj. An empty outer vector, or an empty vector for a layer, means no mask there; otherwise the sizes
// must be the layer's head count and FFN width.
struct ForwardMasks {
  std::vector<std::vector<float>> heads;
  std::vector<std::vector<float>> ffn_channels;
};

// The layer index reported for the output head (lm_head or the tied embedding).
inline constexpr int64_t kOutputLayer = -1;

struct LinearActivation {
  int64_t layer;                // block index, or kOutputLayer
  const std::string& weight;    // canonical weight name, e.g. "model.layers.3.mlp.down_proj.weight"
  const RowMatrix& input;       // [T, in]: what multiplies the weight (after masks)
  const RowMatrix* output;      // [T, out] including bias, or null unless wants_output()
};

// Called on the thread that made the forward call, in execution order (before the layer's product unless
// wants_output()): per block q, k, v (the same input
// three times), o, gate, up, down (GPT-2: attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj); then the output head. Batched calls with an observer run their windows one
// after another in order, so accumulated statistics are deterministic.
class LinearObserver {
 public:
  virtual ~LinearObserver() = default;
  virtual void on_linear(const LinearActivation& activation) = 0;
  virtual bool wants_output() const { return false; }
};

// Thrown from LinearObserver::on_linear to end a forward call as soon as the observer has every activation it
// needs (calibration capturing the first linears of a block skips the rest of the block). The caller catches it;
// the hidden state it passed in is then only partly computed and must be discarded.
struct ForwardStop {};

struct RunOptions {
  const ForwardMasks* masks = nullptr;
  LinearObserver* observer = nullptr;
};

}  // namespace slmopt
