// Private to io/: GPT-2 (Family::Gpt2) ↔ GGUF in llama.cpp's "gpt2" architecture. write_gguf and load_gguf
// dispatch here; see gguf_gpt2.cpp for the tensor names, keys and the placeholder vocabulary.
#pragma once

#include <string>

#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/ir/model.h"

namespace slmopt {

inline constexpr std::string_view kGpt2GgufArchitecture = "gpt2";

void write_gpt2_gguf(const Model& model, const std::string& path, const GgufWriteOptions& options);
Model load_gpt2_gguf(const GgufFile& file, const std::string& path);

}  // namespace slmopt
