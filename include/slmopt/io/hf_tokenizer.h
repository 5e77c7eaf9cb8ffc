// Reads a Hugging Face tokenizer.json (+ tokenizer_config.json) into the format-neutral Vocab, and writes a
// Vocab back out as tokenizer.json (for vocabularies that came from GGUF).
//
// Supported: "model": {"type": "BPE"} in the two styles of ir/vocab.h (SentencePiece-style with the
// Replace(" "→"▁") / Prepend("▁") normalizer and byte fallback; GPT-2 byte-level with the ByteLevel
// pre-tokenizer or a Split regex + ByteLevel sequence). Anything else is refused with Error(Unsupported)
// naming the file and the component.
#pragma once

#include <string>

#include "slmopt/ir/vocab.h"

namespace slmopt {

// tokenizer_config_path may be empty or name a missing file (then defaults apply).
Vocab load_hf_vocab(const std::string& tokenizer_json_path, const std::string& tokenizer_config_path);

// tokenizer.json text for a Vocab (returns vocab.source_tokenizer_json when present).
std::string hf_tokenizer_json(const Vocab& vocab);
// tokenizer_config.json text for a Vocab (returns vocab.source_tokenizer_config_json when present).
std::string hf_tokenizer_config_json(const Vocab& vocab);

}  // namespace slmopt
