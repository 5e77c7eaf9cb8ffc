// RoPE inverse frequencies of a Config (theta^(−2i/head_dim), adjusted by rope_scaling), for code below exec/
// that must tabulate rotations (the ONNX exporter's cos/sin caches). Same formulas as exec/rope.h's
// rope_inverse_frequencies; onnx_test checks that the two agree.
#pragma once

#include <vector>

#include "slmopt/ir/config.h"

namespace slmopt {

std::vector<double> config_rope_inverse_frequencies(const Config& config);

}  // namespace slmopt
