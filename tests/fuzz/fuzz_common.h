// What every harness does with a model or vocabulary a reader accepted: use it as the CLI would next, so that a
// reader which accepts an inconsistent file is caught where the inconsistency bites (validate, tokenize).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/text/tokenizer.h"

namespace slmopt::fuzz {

// Texts that reach the added-token split, the normalizers, byte fallback and the pre-tokenizer regexes.
inline const std::vector<std::string>& sample_texts() {
  static const std::vector<std::string> texts = {
      "", "Hello world", "  leading and trailing  ", "In the beginning God created 123 heavens.\n\nAnd",
      "caf\xc3\xa9 \xe2\x96\x81 \xf0\x9f\x98\x80 <s></s><|endoftext|><unk>", "\t\r\n x"};
  return texts;
}

// `input_text`: the fuzz input's own text (may be invalid UTF-8, a clean BadInput), encoded after the samples
// with the same tokenizer: building a tokenizer is most of an execution, so it is built once.
inline void exercise_vocab(const Vocab& vocab, std::string_view input_text = {}) {
  if (vocab.kind == VocabKind::None) return;
  const Tokenizer tokenizer(vocab);
  for (const std::string& text : sample_texts()) {
    const std::vector<int32_t> ids = tokenizer.encode(text);
    (void)tokenizer.decode(ids);
    (void)tokenizer.decode(ids, /*skip_special=*/true);
  }
  // Every id decodes, alone and in a run (byte tokens reassembled across neighbours).
  std::vector<int32_t> all;
  for (int32_t id = 0; id < tokenizer.vocab_size() && id < 512; ++id) all.push_back(id);
  (void)tokenizer.decode(all);
  if (!input_text.empty()) (void)tokenizer.decode(tokenizer.encode(input_text));
}

inline void exercise_model(const Model& model) {
  model.validate();
  for (const auto& [name, tensor] : model.tensors()) {
    // Touch the first and last byte of every tensor: a view past the end of its mapping faults here.
    if (tensor.nbytes() != 0) {
      volatile uint8_t sink = tensor.data()[0];
      sink = tensor.data()[tensor.nbytes() - 1];
      (void)sink;
    }
  }
  exercise_vocab(model.vocab);
}

}  // namespace slmopt::fuzz
