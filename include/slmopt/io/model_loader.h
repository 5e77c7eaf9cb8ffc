// One entry point for every input format: load_model(path) picks the reader from what the path is.
//   a folder          → Hugging Face checkpoint of any family (io/hf.h), or an ONNX export folder
//                       (io/onnx_folder.h: onnx/<graph>, no safetensors weights)
//   *.gguf            → GGUF file (io/gguf.h)
//   *.onnx            → decoder-only ONNX graph (io/onnx_import.h)
// A missing path is an Error(Io) naming it; any other file is an Error(Unsupported) naming what is accepted.
#pragma once

#include <string>

#include "slmopt/ir/model.h"

namespace slmopt {

Model load_model(const std::string& path);

}  // namespace slmopt
