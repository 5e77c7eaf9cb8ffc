// The stage constructors the registry (registry.cpp) lists; one file per stage.
#pragma once

#include "slmopt/pipeline/stage.h"

namespace slmopt::pipeline {

StageInfo quantize_stage();
StageInfo prune_stage();
StageInfo distill_export_stage();
StageInfo compile_stage();
StageInfo eval_stage();

}  // namespace slmopt::pipeline
