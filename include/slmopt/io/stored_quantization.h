// How a source stored weights that loading dequantized to float (GPTQ/AWQ checkpoints, slmopt's int4/int8 ONNX
// exports): the readers hand back F32 tensors, so `inspect` asks this separately to say what the files hold.
#pragma once

#include <map>
#include <string>

namespace slmopt {

struct StoredQuantization {
  std::string description;                     // "GPTQ int4, group 128, asymmetric"; empty: nothing packed
  std::map<std::string, std::string> tensors;  // canonical tensor name → "GPTQ int4", "MatMulNBits int4", ...
};

}  // namespace slmopt
