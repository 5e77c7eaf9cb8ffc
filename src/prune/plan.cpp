// Choosing what a structured cut keeps (see structured.h). Counts first, then units: a layer's head count must
// be a GQA-valid layout (QueryHeads: kv·m heads, m per group; KvGroups: k whole groups), so ratios are rounded to
// the nearest valid count, or — with CountPolicy::PerLayer — met by greedily removing the cheapest "step"
// anywhere in the model (one head from every group of a layer, or one whole group), costs being the scores
// divided by their layer's L2 norm. Within a layer the highest scores survive; ties keep the lower index, so
// plans are deterministic.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/prune/structured.h"

namespace slmopt {
namespace {

// Indices of the `count` largest values (ties: lower index first), returned ascending.
std::vector<int64_t> top_indices(const std::vector<double>& values, int64_t count) {
  std::vector<int64_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return values[static_cast<size_t>(a)] > values[static_cast<size_t>(b)]; });
  order.resize(static_cast<size_t>(count));
  std::sort(order.begin(), order.end());
  return order;
}

// Indices ordered weakest first (ties: higher index first, the mirror of top_indices).
std::vector<int64_t> weakest_first(const std::vector<double>& values) {
  std::vector<int64_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const double va = values[static_cast<size_t>(a)], vb = values[static_cast<size_t>(b)];
    return va < vb || (va == vb && a > b);
  });
  return order;
}

std::vector<double> normalised(const std::vector<double>& values) {
  double sq = 0;
  for (double v : values) sq += v * v;
  const double norm = std::sqrt(sq);
  std::vector<double> out(values);
  if (norm > 0)
    for (double& v : out) v /= norm;
  return out;
}

struct HeadLayout {
  int64_t heads, kv, group;
  // Granularity of a removal step in this unit: QueryHeads removes one head per group (kv heads), KvGroups one
  // group (group heads).
  int64_t step(HeadUnit unit) const { return unit == HeadUnit::QueryHeads ? kv : group; }
  int64_t max_steps(HeadUnit unit) const { return (unit == HeadUnit::QueryHeads ? group : kv) - 1; }
  bool valid(int64_t keep, HeadUnit unit) const {
    return keep >= step(unit) && keep <= heads && keep % step(unit) == 0;
  }
};

void check_ratio(double r, const char* what) {
  if (!(r >= 0 && r < 1)) throw_error(ErrorKind::Usage, "{} must be in [0, 1), got {}", what, r);
}

// Kept head indices of one layer given the count.
void choose_heads(const LayerImportance& s, const HeadLayout& layout, HeadUnit unit, int64_t keep, LayerKeep& out) {
  out.heads.clear();
  out.kv_heads.clear();
  if (unit == HeadUnit::QueryHeads) {
    const int64_t per_group = keep / layout.kv;
    for (int64_t g = 0; g < layout.kv; ++g) {
      std::vector<double> group_scores(s.heads.begin() + g * layout.group, s.heads.begin() + (g + 1) * layout.group);
      for (int64_t i : top_indices(group_scores, per_group)) out.heads.push_back(g * layout.group + i);
      out.kv_heads.push_back(g);
    }
  } else {
    out.kv_heads = top_indices(s.kv_groups, keep / layout.group);
    for (int64_t g : out.kv_heads)
      for (int64_t h = g * layout.group; h < (g + 1) * layout.group; ++h) out.heads.push_back(h);
  }
}

// Per-layer kept head counts for a ratio under CountPolicy::PerLayer (greedy cheapest step first).
std::vector<int64_t> global_head_counts(const ImportanceScores& scores, const std::vector<HeadLayout>& layouts,
                                        HeadUnit unit, double ratio) {
  const size_t L = layouts.size();
  int64_t total = 0;
  for (const auto& l : layouts) total += l.heads;
  const int64_t target = std::llround(ratio * static_cast<double>(total));
  // costs[l][j]: cost of layer l's j-th removal step.
  std::vector<std::vector<double>> costs(L);
  for (size_t l = 0; l < L; ++l) {
    const auto& layout = layouts[l];
    if (unit == HeadUnit::QueryHeads) {
      const auto norm = normalised(scores.layers[l].heads);
      std::vector<std::vector<int64_t>> orders;
      for (int64_t g = 0; g < layout.kv; ++g)
        orders.push_back(weakest_first(std::vector<double>(norm.begin() + g * layout.group,
                                                           norm.begin() + (g + 1) * layout.group)));
      for (int64_t j = 0; j < layout.max_steps(unit); ++j) {
        double cost = 0;
        for (int64_t g = 0; g < layout.kv; ++g) cost += norm[static_cast<size_t>(g * layout.group + orders[g][j])];
        costs[l].push_back(cost);
      }
    } else {
      const auto norm = normalised(scores.layers[l].kv_groups);
      const auto order = weakest_first(norm);
      for (int64_t j = 0; j < layout.max_steps(unit); ++j) costs[l].push_back(norm[static_cast<size_t>(order[j])]);
    }
  }
  std::vector<int64_t> steps(L, 0);
  int64_t removed = 0;
  for (;;) {
    int64_t best = -1;
    double best_cost = 0;
    for (size_t l = 0; l < L; ++l) {
      const int64_t size = layouts[l].step(unit);
      if (steps[l] >= layouts[l].max_steps(unit) || removed + size > target) continue;
      const double cost = costs[l][static_cast<size_t>(steps[l])] / static_cast<double>(size);
      if (best < 0 || cost < best_cost) {
        best = static_cast<int64_t>(l);
        best_cost = cost;
      }
    }
    if (best < 0) break;
    removed += layouts[static_cast<size_t>(best)].step(unit);
    ++steps[static_cast<size_t>(best)];
  }
  std::vector<int64_t> keep(L);
  for (size_t l = 0; l < L; ++l) keep[l] = layouts[l].heads - steps[l] * layouts[l].step(unit);
  return keep;
}

int64_t round_channels(double kept, int64_t multiple, int64_t ffn) {
  const int64_t m = std::min(multiple, ffn);
  const int64_t rounded = std::llround(kept / static_cast<double>(m)) * m;
  return std::clamp<int64_t>(rounded, m, ffn);
}

}  // namespace

PrunePlan full_plan(const Config& config) {
  PrunePlan plan;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    LayerKeep k;
    k.source_layer = l;
    k.heads.resize(static_cast<size_t>(config.heads(l)));
    std::iota(k.heads.begin(), k.heads.end(), 0);
    k.kv_heads.resize(static_cast<size_t>(config.kv_heads(l)));
    std::iota(k.kv_heads.begin(), k.kv_heads.end(), 0);
    k.ffn.resize(static_cast<size_t>(config.ffn(l)));
    std::iota(k.ffn.begin(), k.ffn.end(), 0);
    plan.layers.push_back(std::move(k));
  }
  return plan;
}

PrunePlan plan_pruning(const Config& config, const ImportanceScores& scores, const PruneSpec& spec) {
  const int64_t L = config.num_layers;
  if (static_cast<int64_t>(scores.layers.size()) != L)
    throw_error(ErrorKind::Usage, "importance scores cover {} layers, the model has {}", scores.layers.size(), L);
  std::vector<HeadLayout> layouts;
  for (int64_t l = 0; l < L; ++l) {
    const auto& s = scores.layers[static_cast<size_t>(l)];
    if (static_cast<int64_t>(s.heads.size()) != config.heads(l) ||
        static_cast<int64_t>(s.kv_groups.size()) != config.kv_heads(l) ||
        static_cast<int64_t>(s.ffn.size()) != config.ffn(l))
      throw_error(ErrorKind::Usage,
                  "importance scores of layer {} have {} heads, {} KV groups, {} FFN channels; the model {}, {}, {}",
                  l, s.heads.size(), s.kv_groups.size(), s.ffn.size(), config.heads(l), config.kv_heads(l),
                  config.ffn(l));
    layouts.push_back({config.heads(l), config.kv_heads(l), config.heads(l) / config.kv_heads(l)});
  }
  check_ratio(spec.head_ratio, "the head pruning ratio");
  check_ratio(spec.ffn_ratio, "the FFN pruning ratio");
  if ((spec.head_ratio > 0) + spec.heads_per_layer.has_value() + !spec.layer_heads.empty() > 1)
    throw_error(ErrorKind::Usage, "give at most one of a head ratio, heads per layer, per-layer head counts");
  if ((spec.ffn_ratio > 0) + !spec.layer_ffn.empty() > 1)
    throw_error(ErrorKind::Usage, "give at most one of an FFN ratio and per-layer FFN sizes");
  if (spec.ffn_multiple < 1) throw_error(ErrorKind::Usage, "the FFN multiple must be at least 1");
  auto check_per_layer = [&](const std::vector<int64_t>& v, const char* what) {
    if (!v.empty() && static_cast<int64_t>(v.size()) != L)
      throw_error(ErrorKind::Usage, "{} has {} entries for {} layers", what, v.size(), L);
  };
  check_per_layer(spec.layer_heads, "the per-layer head count list");
  check_per_layer(spec.layer_ffn, "the per-layer FFN size list");

  // Head counts per layer.
  std::vector<int64_t> keep_heads(static_cast<size_t>(L));
  if (spec.head_ratio > 0 && spec.counts == CountPolicy::PerLayer) {
    keep_heads = global_head_counts(scores, layouts, spec.head_unit, spec.head_ratio);
  } else {
    for (int64_t l = 0; l < L; ++l) {
      const HeadLayout& layout = layouts[static_cast<size_t>(l)];
      int64_t keep = layout.heads;
      if (spec.head_ratio > 0) {
        const double want = static_cast<double>(layout.heads) * (1 - spec.head_ratio);
        const int64_t step = layout.step(spec.head_unit);
        keep = std::clamp<int64_t>(static_cast<int64_t>(std::floor(want / static_cast<double>(step) + 0.5)) * step, step,
                                   layout.heads);
      } else if (spec.heads_per_layer || !spec.layer_heads.empty()) {
        keep = spec.heads_per_layer ? *spec.heads_per_layer : spec.layer_heads[static_cast<size_t>(l)];
        if (!layout.valid(keep, spec.head_unit))
          throw_error(ErrorKind::Usage,
                      "layer {}: keeping {} of {} heads ({} KV groups) is not GQA-consistent when removing {}; "
                      "valid counts are multiples of {} up to {}",
                      l, keep, layout.heads, layout.kv,
                      spec.head_unit == HeadUnit::QueryHeads ? "query heads within groups" : "whole KV groups",
                      layout.step(spec.head_unit), layout.heads);
      }
      keep_heads[static_cast<size_t>(l)] = keep;
    }
  }

  // A ratio that rounds to no cut anywhere is refused: exiting 0 with "0.0 % removed" hides the mistake.
  if (spec.head_ratio > 0) {
    bool removes = false;
    for (int64_t l = 0; l < L; ++l) removes |= keep_heads[static_cast<size_t>(l)] < layouts[static_cast<size_t>(l)].heads;
    if (!removes) {
      const HeadLayout& layout = layouts[0];
      const int64_t step = layout.step(spec.head_unit);
      int64_t total = 0;
      for (const auto& l : layouts) total += l.heads;
      // Same count everywhere: a layer rounds heads·(1 − r) to the nearest multiple of the step (ties keep more),
      // so r must exceed step / (2·heads). Met globally: llround(r·total) must reach one step.
      const std::string hint =
          spec.counts == CountPolicy::PerLayer
              ? fmt::format("use a ratio of at least {:.3g}", (static_cast<double>(step) - 0.5) / static_cast<double>(total))
              : fmt::format("use a ratio above {:g} (e.g. {:g})",
                            static_cast<double>(step) / (2.0 * static_cast<double>(layout.heads)),
                            static_cast<double>(step) / static_cast<double>(layout.heads));
      throw_error(ErrorKind::Usage,
                  "a head ratio of {} removes no head: layer 0 has {} query heads in {} KV groups, and removing {} "
                  "takes {} heads at a time, so the nearest valid cut keeps them all; {}",
                  spec.head_ratio, layout.heads, layout.kv,
                  spec.head_unit == HeadUnit::QueryHeads ? "query heads within groups" : "whole KV groups", step, hint);
    }
  }

  // FFN counts per layer.
  std::vector<int64_t> keep_ffn(static_cast<size_t>(L));
  if (spec.ffn_ratio > 0 && spec.counts == CountPolicy::PerLayer) {
    struct Channel { double score; int64_t layer, index; };
    std::vector<Channel> all;
    for (int64_t l = 0; l < L; ++l) {
      const auto norm = normalised(scores.layers[static_cast<size_t>(l)].ffn);
      for (size_t c = 0; c < norm.size(); ++c) all.push_back({norm[c], l, static_cast<int64_t>(c)});
    }
    std::stable_sort(all.begin(), all.end(), [](const Channel& a, const Channel& b) { return a.score < b.score; });
    const auto remove = static_cast<size_t>(std::llround(spec.ffn_ratio * static_cast<double>(all.size())));
    for (int64_t l = 0; l < L; ++l) keep_ffn[static_cast<size_t>(l)] = config.ffn(l);
    for (size_t i = 0; i < remove; ++i) --keep_ffn[static_cast<size_t>(all[i].layer)];
    for (int64_t l = 0; l < L; ++l)
      keep_ffn[static_cast<size_t>(l)] =
          round_channels(static_cast<double>(keep_ffn[static_cast<size_t>(l)]), spec.ffn_multiple, config.ffn(l));
  } else {
    for (int64_t l = 0; l < L; ++l) {
      const int64_t ffn = config.ffn(l);
      int64_t keep = ffn;
      if (spec.ffn_ratio > 0) keep = round_channels(static_cast<double>(ffn) * (1 - spec.ffn_ratio), spec.ffn_multiple, ffn);
      if (!spec.layer_ffn.empty()) {
        keep = spec.layer_ffn[static_cast<size_t>(l)];
        if (keep < 1 || keep > ffn)
          throw_error(ErrorKind::Usage, "layer {}: cannot keep {} of {} FFN channels", l, keep, ffn);
      }
      keep_ffn[static_cast<size_t>(l)] = keep;
    }
  }

  if (spec.ffn_ratio > 0) {
    bool removes = false;
    for (int64_t l = 0; l < L; ++l) removes |= keep_ffn[static_cast<size_t>(l)] < config.ffn(l);
    if (!removes)
      throw_error(ErrorKind::Usage,
                  "an FFN ratio of {} removes no channel: layer 0 has {} channels and kept counts are rounded to a "
                  "multiple of {}; use a larger ratio or a smaller multiple",
                  spec.ffn_ratio, config.ffn(0), std::min(spec.ffn_multiple, config.ffn(0)));
  }

  // Layers.
  if (!spec.keep_layers.empty() && !spec.drop_layers.empty())
    throw_error(ErrorKind::Usage, "give layers to keep or layers to drop, not both");
  std::vector<bool> kept(static_cast<size_t>(L), spec.keep_layers.empty());
  for (int64_t l : spec.keep_layers.empty() ? spec.drop_layers : spec.keep_layers) {
    if (l < 0 || l >= L) throw_error(ErrorKind::Usage, "layer {} is out of range (the model has {} layers)", l, L);
    kept[static_cast<size_t>(l)] = spec.keep_layers.empty() ? false : true;
  }

  PrunePlan plan;
  for (int64_t l = 0; l < L; ++l) {
    if (!kept[static_cast<size_t>(l)]) continue;
    const auto& s = scores.layers[static_cast<size_t>(l)];
    LayerKeep k;
    k.source_layer = l;
    choose_heads(s, layouts[static_cast<size_t>(l)], spec.head_unit, keep_heads[static_cast<size_t>(l)], k);
    k.ffn = top_indices(s.ffn, keep_ffn[static_cast<size_t>(l)]);
    plan.layers.push_back(std::move(k));
  }
  if (plan.layers.empty()) throw_error(ErrorKind::Usage, "the layer selection keeps no layer");
  return plan;
}

nlohmann::json prune_plan_to_json(const PrunePlan& plan) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& k : plan.layers)
    layers.push_back({{"source_layer", k.source_layer}, {"heads", k.heads}, {"kv_heads", k.kv_heads}, {"ffn", k.ffn}});
  return {{"layers", std::move(layers)}};
}

}  // namespace slmopt
