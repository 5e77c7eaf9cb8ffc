// A whole Hugging Face folder: config.json (part 0), model.safetensors (part 1), tokenizer.json (part 2) loaded
// through load_model as the CLI does (GPT-2 folders included), then validated and tokenized with.
#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/model_loader.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(hf_folder) {
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), 3);
  fuzz::write_scratch("hf/config.json", parts[0]);
  fuzz::write_scratch("hf/model.safetensors", parts[1]);
  fuzz::write_scratch("hf/tokenizer.json", parts[2]);
  fuzz::expect_clean_error([&] { fuzz::exercise_model(load_model(fuzz::scratch_dir() + "/hf")); });
  return 0;
}
