// Private to io/: Vocab ↔ GGUF tokenizer.* metadata, in the form llama.cpp's tokenizers expect.
#pragma once

#include <cstdint>
#include <string>

#include "slmopt/io/gguf_format.h"
#include "slmopt/ir/vocab.h"

namespace slmopt::gguf_tokenizer {

// Adds the tokenizer keys for `vocab`, padded with unused "[PADn]" tokens up to `n_embedding_rows` (llama.cpp
// sizes the vocabulary from the token list, which must match the embedding). Nothing is added for
// VocabKind::None. Throws Error(BadInput) naming `context` for an inconsistent vocabulary.
void add_vocab_metadata(const Vocab& vocab, int64_t n_embedding_rows, GgufMetadata& metadata,
                        const std::string& context);

// Rebuilds a Vocab from the tokenizer keys (VocabKind::None when there are none). Throws Error(BadInput)
// naming the file and key for inconsistent keys, Error(Unsupported) for tokenizer models other than
// "llama" and "gpt2".
Vocab read_vocab_metadata(const GgufFile& file);

}  // namespace slmopt::gguf_tokenizer
