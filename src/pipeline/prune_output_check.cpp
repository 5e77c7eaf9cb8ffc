// The early refusal of prune cuts an output format cannot hold (see prune_output_check.h). The trial config only
// has to change what the cut changes in kind — how many heads, whether layers differ — not the final counts: the
// writers refuse a description, not a number.
#include "prune_output_check.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "slmopt/core/error.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf.h"

namespace slmopt::pipeline {

void check_prune_output(const Config& config, const PruneSpec& spec, const std::string& format,
                        const std::string& output) {
  const bool cuts_heads = spec.head_ratio > 0 || spec.heads_per_layer.has_value() || !spec.layer_heads.empty();
  auto uneven = [](const std::vector<int64_t>& v) {
    return std::adjacent_find(v.begin(), v.end(), std::not_equal_to<>()) != v.end();
  };
  const bool differs = spec.counts == CountPolicy::PerLayer || uneven(spec.layer_heads) || uneven(spec.layer_ffn);
  if (!cuts_heads && !differs) return;

  Config trial = config;
  std::string what;
  if (cuts_heads) {
    const int64_t heads = config.num_heads, kv = config.num_kv_heads, group = heads / kv;
    // One query head fewer in each KV group, or one group fewer when a group holds one head (or whole groups go).
    const bool drop_group = spec.head_unit == HeadUnit::KvGroups || group == 1;
    trial.num_kv_heads = drop_group ? kv - 1 : kv;
    trial.num_heads = drop_group ? trial.num_kv_heads * group : heads - kv;
    trial.layer_num_heads.clear();
    trial.layer_num_kv_heads.clear();
    what = "attention heads";
    if (trial.num_heads < 1 || trial.num_kv_heads < 1) return;  // plan_pruning refuses such a cut itself
  }
  if (differs && config.num_layers > 1 && config.intermediate_size > 1) {
    trial.layer_intermediate_size.assign(static_cast<size_t>(config.num_layers), config.intermediate_size);
    trial.layer_intermediate_size.back() = config.intermediate_size - 1;
    what += std::string(what.empty() ? "" : " and ") + "different widths per layer";
  }
  try {
    if (format == "gguf")
      check_gguf_architecture(trial, output);
    else
      hf_config_json(trial, Vocab{}, std::nullopt);  // the ONNX export carries the same config.json
  } catch (const Error& e) {
    throw_error(ErrorKind::Unsupported, "prune: cannot cut {} of this {} model for --format {} ({})", what,
                config.architecture, format, e.what());
  }
}

}  // namespace slmopt::pipeline
