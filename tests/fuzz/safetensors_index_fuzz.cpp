// Sharded safetensors: model.safetensors.index.json (part 0) naming two shards (parts 1 and 2).
#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/safetensors.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(safetensors_index) {
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), 3);
  fuzz::write_scratch("index/model.safetensors.index.json", parts[0]);
  fuzz::write_scratch("index/model-00001-of-00002.safetensors", parts[1]);
  fuzz::write_scratch("index/model-00002-of-00002.safetensors", parts[2]);
  fuzz::expect_clean_error([&] { (void)read_safetensors_checkpoint(fuzz::scratch_dir() + "/index"); });
  return 0;
}
