// Private to io/: a TokenizerPipeline as the "normalizer" and "pre_tokenizer" members of tokenizer.json, so
// that GGUF files slmopt writes can carry a pipeline llama.cpp's pre-tokenizer names cannot say
// (slmopt.tokenizer.pipeline) and read it back exactly.
#pragma once

#include <string>

#include "slmopt/ir/vocab.h"

namespace slmopt::hf_pipeline {

// {"normalizer": ..., "pre_tokenizer": ...} in tokenizer.json's form (one line).
std::string to_json(const TokenizerPipeline& pipeline);
// The inverse; Error(BadInput)/Error(Unsupported) naming `context` and the component, as load_hf_vocab.
TokenizerPipeline from_json(const std::string& text, const std::string& context);

}  // namespace slmopt::hf_pipeline
