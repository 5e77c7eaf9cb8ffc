// Private to pipeline/: refuses, before the (slow) importance run, a prune cut that the chosen output format
// cannot hold for the model's description — e.g. attention heads cut from GPT-2, whose llama.cpp graph sizes
// attn_qkv/attn_output from hidden_size and whose config.json derives head_dim from n_embd / n_head.
#pragma once

#include <string>

#include "slmopt/ir/config.h"
#include "slmopt/prune/structured.h"

namespace slmopt::pipeline {

// Applies the kind of cut `spec` asks for (one head or KV group fewer per layer; different FFN widths per layer
// for per-layer counts) to a copy of `config` and asks the format's writer whether it can express the result.
// Throws Error(Unsupported): "prune: cannot cut <what> of this <class> model for --format <format> (<the writer's
// reason>)".
void check_prune_output(const Config& config, const PruneSpec& spec, const std::string& format,
                        const std::string& output);

}  // namespace slmopt::pipeline
