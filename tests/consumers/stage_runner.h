// Runs a registered stage as its subcommand would, with the given options and everything else at its default:
// the consumer tests produce their files through the same stage code as `slmopt quantize` / `prune` / `compile`.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

#include "slmopt/pipeline/stage.h"

namespace slmopt::testing {

inline void run_stage(const std::string& stage_name, const std::map<std::string, pipeline::OptionValue>& options) {
  const pipeline::StageInfo* stage = pipeline::find_stage(stage_name);
  if (!stage) throw std::runtime_error("no stage " + stage_name);
  pipeline::OptionValues values(stage->options);
  for (const auto& [name, value] : options) values.set(name, value);
  pipeline::run_single_stage(*stage, values);
}

}  // namespace slmopt::testing
