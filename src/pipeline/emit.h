// `slmopt run RECIPE --emit ninja|make`: the recipe as a build file, one edge per stage and per target, each the
// equivalent single-stage slmopt command line with its inputs and outputs declared, and a last edge that runs
// `slmopt run RECIPE --assemble` to hash the artifacts into the manifest and report. An existing build engine
// then runs targets in parallel and rebuilds only what changed (ninja also reruns an edge whose command changed).
#pragma once

#include <string>

#include "slmopt/pipeline/recipe.h"

namespace slmopt::pipeline {

// Writes OUTPUT/build.ninja or OUTPUT/Makefile and returns its path.
std::string write_build_file(const Recipe& recipe, const RunOptions& options);

}  // namespace slmopt::pipeline
