// Structured pruning: which heads, KV groups, FFN channels and layers survive (a PrunePlan, chosen from
// importance scores by plan_pruning), and the physical cut (apply_prune_plan) that removes the rest from the
// tensors and the Config, so the pruned model is smaller, not just masked.
//
// What a cut removes (HF [out, in] layout):
//   query head h   → rows h·hd..(h+1)·hd of q_proj (+ q bias), the same columns of o_proj
//   KV group g     → rows g·hd.. of k_proj and v_proj (+ biases), and every query head of the group
//   FFN channel c  → row c of gate_proj and up_proj (+ biases), column c of down_proj
//   layer l        → every model.layers.l.* tensor; later layers are renumbered
// GQA stays consistent: every kept KV group keeps the same number m of query heads, so a layer ends with
// kv' groups and kv'·m heads (heads a multiple of KV heads); query head i of the result reads KV head i / m,
// exactly as the original head did. head_dim, RoPE, norms, embedding and output head are untouched.
//
// Hugging Face configs need the same counts in every layer (CountPolicy::SameEveryLayer); GGUF takes per-layer
// head and FFN counts (CountPolicy::PerLayer, or explicit per-layer counts), recorded in Config::layer_*.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "slmopt/ir/model.h"
#include "slmopt/prune/importance.h"

namespace slmopt {

// What survives of one source layer (indices into the source model, ascending).
struct LayerKeep {
  int64_t source_layer = 0;
  std::vector<int64_t> heads;
  std::vector<int64_t> kv_heads;
  std::vector<int64_t> ffn;
};

// Layers in output order.
struct PrunePlan {
  std::vector<LayerKeep> layers;
};

// Keeps everything of `config` (the starting point for hand-made plans).
PrunePlan full_plan(const Config& config);

enum class HeadUnit {
  QueryHeads,  // remove query heads inside groups, every KV group kept, the same count from each group
  KvGroups,    // remove whole KV groups with all their query heads and their K/V rows
};

enum class CountPolicy {
  SameEveryLayer,  // ratios become one count for every layer (what Hugging Face configs can express)
  PerLayer,        // ratios are met globally: scores normalised per layer (÷ their L2 norm, as Michel et al.)
                   // and ranked across layers, so weak layers lose more (GGUF per-layer counts)
};

struct PruneSpec {
  // Attention: at most one of head_ratio, heads_per_layer, layer_heads.
  double head_ratio = 0;                   // fraction of query heads to remove, in [0, 1)
  std::optional<int64_t> heads_per_layer;  // query heads to keep in every layer
  std::vector<int64_t> layer_heads;        // query heads to keep in each layer (one entry per layer)
  HeadUnit head_unit = HeadUnit::QueryHeads;
  // FFN: at most one of ffn_ratio, layer_ffn.
  double ffn_ratio = 0;                    // fraction of FFN channels to remove, in [0, 1)
  std::vector<int64_t> layer_ffn;          // FFN channels to keep in each layer
  int64_t ffn_multiple = 1;                // kept channel counts are rounded to a multiple of this (e.g. 32
                                           // or 256 so down_proj rows stay whole quantization blocks)
  CountPolicy counts = CountPolicy::SameEveryLayer;
  // Layers: at most one of keep_layers, drop_layers (source indices). Applied after the head/FFN choice.
  std::vector<int64_t> keep_layers;
  std::vector<int64_t> drop_layers;
};

// Chooses what to keep: the highest-scoring units. A count that GQA cannot honour exactly (a ratio between
// two valid counts) goes to the nearest valid count, ties keeping more; heads_per_layer / layer_heads that no
// valid layout matches are an Error(Usage) naming the valid counts, and so is a head or FFN ratio that rounds to
// removing nothing in any layer (saying what the smallest working ratio is). Error(Usage) for ratios outside [0, 1),
// conflicting options, layer lists out of range, or scores that do not match the model's shape.
PrunePlan plan_pruning(const Config& config, const ImportanceScores& scores, const PruneSpec& spec);

// Physically removes what the plan drops: slices every affected tensor (decoded to float, re-encoded in its
// own dtype — F32, F16 or BF16; block-quantized tensors are an Error(Unsupported): prune before quantizing),
// renumbers layers, and rewrites the Config (uniform counts, or per-layer vectors when layers differ;
// num_heads / num_kv_heads / intermediate_size then hold the largest layer's value). Error(Usage) for a plan
// that is GQA-inconsistent, empty, unsorted or out of range. The model is validated afterwards.
void apply_prune_plan(Model& model, const PrunePlan& plan);

// The plan as JSON: {"layers": [{"source_layer": 0, "heads": [...], "kv_heads": [...], "ffn": [...]}, ...]}.
nlohmann::json prune_plan_to_json(const PrunePlan& plan);

}  // namespace slmopt
