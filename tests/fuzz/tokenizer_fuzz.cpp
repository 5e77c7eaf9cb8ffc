// tokenizer.json (part 0) with tokenizer_config.json (part 1): loaded into a Vocab, built into a Tokenizer, then
// encode/decode of fixed texts and of the input's own bytes (part 2, when valid UTF-8).
#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/hf_tokenizer.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(tokenizer) {
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), 3);
  const std::string json = fuzz::write_scratch("tokenizer.json", parts[0]);
  const std::string config = fuzz::write_scratch("tokenizer_config.json", parts[1]);
  fuzz::expect_clean_error([&] {
    fuzz::exercise_vocab(load_hf_vocab(json, parts[1].empty() ? std::string() : config), parts[2]);
  });
  return 0;
}
