// RoPE cos/sin tables of the ONNX exporter (see onnx_export_graph.h). The tables are baked at export for every
// position up to max_position, in double and rounded once, from the frequencies the forward pass uses
// (ir/rope_frequencies.h), so the exported graph rotates exactly as slmopt's own evaluation does.
#include <cmath>

#include "onnx_export_graph.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/rope_frequencies.h"

namespace slmopt::onnx_export_detail {

std::pair<double, bool> RopeTableSet::key(int64_t layer) const {
  const Config& c = ctx_.model.config;
  return {c.layer_rope_theta(layer), c.layer_rope_scaled(layer)};
}

const RopeCaches& RopeTableSet::caches(int64_t layer) {
  const auto k = key(layer);
  if (auto it = caches_.find(k); it != caches_.end()) return it->second;
  const Config& c = ctx_.model.config;
  auto& g = ctx_.graph;
  const int64_t half = c.rotary_dims() / 2, positions = c.max_position;
  const bool long_rope = k.second && c.rope_scaling.type == RopeScalingType::LongRope;
  const double magnitude = layer_rope_attention_factor(c, layer);
  // The first variant keeps the historical names cos_cache / sin_cache.
  const std::string suffix = caches_.empty() ? std::string() : fmt::format("_{}", caches_.size());

  auto table = [&](bool long_factors, const std::string& tag) {
    const std::vector<double> inv = layer_rope_inverse_frequencies(c, layer, long_factors);
    std::vector<float> cos(static_cast<size_t>(positions * half)), sin(cos.size());
    for (int64_t p = 0; p < positions; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(p) * inv[static_cast<size_t>(i)];
        cos[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(angle) * magnitude);
        sin[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(angle) * magnitude);
      }
    return RopeCaches{g.initializer_f32("cos_cache" + tag + suffix, {positions, half}, cos),
                      g.initializer_f32("sin_cache" + tag + suffix, {positions, half}, sin)};
  };
  RopeCaches out;
  if (!long_rope) {
    out = table(false, "");
  } else {
    const RopeCaches short_t = table(false, "_short"), long_t = table(true, "_long");
    const std::string n = "/model/rotary" + suffix + "/longrope";
    const std::string max_pos = g.node("ReduceMax", n + "/MaxPosition", {"position_ids"}, {{"keepdims", int64_t{0}}});
    const std::string use_long =
        g.node("GreaterOrEqual", n + "/BeyondOriginal",
               {max_pos, g.const_i64({c.rope_scaling.original_max_position}, true)});
    out.cos = g.node("Where", n + "/Cos", {use_long, long_t.cos, short_t.cos});
    out.sin = g.node("Where", n + "/Sin", {use_long, long_t.sin, short_t.sin});
  }
  return caches_.emplace(k, out).first->second;
}

const RopeCaches& RopeTableSet::gathered(int64_t layer) {
  const auto k = key(layer);
  if (auto it = gathered_.find(k); it != gathered_.end()) return it->second;
  const RopeCaches raw = caches(layer);
  auto& g = ctx_.graph;
  const std::string n =
      gathered_.empty() ? std::string("/model/rotary") : fmt::format("/model/rotary_{}", gathered_.size());
  RopeCaches out;
  for (auto [table, init, result] : {std::tuple{"cos", &raw.cos, &out.cos}, std::tuple{"sin", &raw.sin, &out.sin}}) {
    const std::string base = n + "/" + table;
    const std::string rows = g.node("Gather", base + "/Gather", {*init, "position_ids"}, {{"axis", int64_t{0}}});
    const std::string full = g.node("Concat", base + "/Concat", {rows, rows}, {{"axis", int64_t{-1}}});
    *result = g.node("Unsqueeze", base + "/Unsqueeze", {full, g.const_i64({1})});
  }
  return gathered_.emplace(k, out).first->second;
}

}  // namespace slmopt::onnx_export_detail
