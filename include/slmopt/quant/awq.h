// AWQ (Lin et al. 2023), activation-aware weight scaling: input channels that carry large activations are
// scaled up before rounding (their weights get finer relative resolution) and the inverse scale is folded
// into whatever produces that input, so the float model computes the same function.
//
// Per group of linears sharing one input, in every block of the decoder description (ir/config.h):
//   q, k, v     input = norm(x)·attn_norm (+ bias)          1/s folds into attn_norm's gain (and LayerNorm bias);
//                                                          (1 + w) gains (Gemma) store (1 + w)/s − 1
//   gate, up    input = norm(h)·ffn_norm (+ bias)           1/s folds into ffn_norm the same way. With a parallel
//               residual (Phi-2) one norm feeds attention and MLP: q, k, v, gate, up are one group on attn_norm
//   o           input = attention output, per query head a copy of v's rows for its KV head: 1/s folds into
//               v's rows (and bias). With grouped-query attention, query heads sharing a KV head must share a
//               scale, so the search runs on per-KV-channel statistics (averaged over the sharing heads) and the
//               scale is repeated for each of them.
//   down        input = act(gate)·up                        1/s folds into up's rows (and bias)
// A group whose input has no producer to fold into keeps s = 1 (plain rounding; the calibration report says
// why): q/k/v and gate/up of post-norm blocks (OLMo-2: the input is the raw residual stream, a sum over every
// earlier layer), and down of gate-less GELU MLPs (Phi-2, GPT-2: gelu(up(x)) is not linear in up's rows).
// Scale search: s = mean|x|^α / mean|ŵ|^(1−α) with ŵ = |w| / max|w| of its (row, group), s normalised by
// √(max s · min s); α ∈ {0, 1/n, …, (n−1)/n}; the α whose RTN-quantized group has the smallest output error on
// the calibration inputs wins (error ||XWᵀ − X(Q(W·diag s)·diag(1/s))ᵀ||², from XᵀX, see input_statistics.h).
// Then a clip search per linear and group of each row (ratio 1 − i/20, i < 10) on the scaled weights, except for
// q and k (as AutoAWQ: attention scores are too sensitive to clipped outliers).
//
// Difference from AutoAWQ: the loss of the scale search is the group's linear outputs, not the output of the
// whole attention/MLP module; it needs no activation kept in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "slmopt/ir/model.h"
#include "slmopt/quant/input_statistics.h"

namespace slmopt {

struct AwqOptions {
  int alpha_grid = 20;      // α ∈ {0, 1/n, …, (n−1)/n}
  bool clip_search = true;  // integer grids only
  int clip_grid = 20;       // clip ratio 1 − i/clip_grid …
  int clip_steps = 10;      // … for i < clip_steps
};

// The scales of one block (each entry multiplies an input channel of the linears it names).
struct AwqLayerScales {
  Eigen::VectorXd qkv;   // [hidden]
  Eigen::VectorXd v_out; // [kv_heads·head_dim]: per row of v; o's input column h·head_dim + d gets v_out[kv(h)·head_dim + d]
  Eigen::VectorXd gate_up;  // [hidden]
  Eigen::VectorXd down;     // [ffn]
};

// Multiplies the input columns of q/k/v (and gate/up of a parallel block), o, gate/up and down by their scales
// and divides the producers (the two norms, v's rows, up's rows) by them. Modified tensors are stored as F32. An
// empty vector leaves that group alone. Error(Internal) for a scale the description has no producer for (gate_up
// of a parallel block, down of a gate-less MLP).
void fold_awq_scales(Model& model, int64_t layer, const AwqLayerScales& scales);

// Expands per-v-row scales to o's input columns (query head h reads KV head h / (heads / kv_heads)).
Eigen::VectorXd expand_kv_scales(const Eigen::VectorXd& v_out, int64_t heads, int64_t kv_heads, int64_t head_dim);

// RTN onto the target grid of linear `index` of a group, given its (scaled) weight; returns the grid values.
using GroupQuantizer = std::function<std::vector<float>(size_t index, std::span<const float> weight)>;

struct AwqGroupInput {
  std::vector<std::span<const float>> weights;  // each [rows_i, in]
  std::vector<int64_t> rows;
  int64_t group_columns = 0;                    // the grid's group size, for mean|ŵ|
};

// Chooses the scale of every input channel of a group. `tie` (optional) maps each of the `in` channels to a
// shared channel index in [0, tied) (o's columns → v's rows); statistics are averaged over tied channels and the
// result has `tied` entries; without it the result has `in` entries. best_alpha receives the chosen α.
Eigen::VectorXd awq_search_scales(const AwqGroupInput& group, const InputStatistics& stats,
                                  const GroupQuantizer& quantize, const AwqOptions& options,
                                  const std::vector<int64_t>* tie = nullptr, int64_t tied = 0,
                                  double* best_alpha = nullptr);

}  // namespace slmopt
