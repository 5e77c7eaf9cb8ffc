// A tokenizer alone as GGUF: read the tokenizer.ggml.* keys of any GGUF file (a model, or a vocabulary-only
// file such as llama.cpp's models/ggml-vocab-*.gguf), and write a vocabulary-only file (no tensors) that
// llama.cpp loads with vocab_only — what its own test vocabularies are.
#pragma once

#include <string>

#include "slmopt/ir/vocab.h"

namespace slmopt {

// The vocabulary of a GGUF file (VocabKind::None when it has no tokenizer keys). Error(BadInput) naming the
// file and key for inconsistent keys; Error(Unsupported) for a tokenizer model other than "llama" / "gpt2" or a
// pre-tokenizer name slmopt does not know.
Vocab load_gguf_vocab(const std::string& path);

// Writes `vocab` as a GGUF file with general.architecture `architecture` and the tokenizer keys only.
void write_gguf_vocab(const Vocab& vocab, const std::string& path, const std::string& architecture = "llama");

}  // namespace slmopt
