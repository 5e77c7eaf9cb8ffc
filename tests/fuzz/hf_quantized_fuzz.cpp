// GPTQ/AWQ folders: config.json with its quantization_config (part 0), model.safetensors with the packed
// qweight/qzeros/scales/g_idx tensors (part 1), quantize_config.json (part 2), read back and dequantized.
#include <cstdio>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/hf_gptq.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(hf_quantized) {
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), 3);
  const std::string dir = fuzz::scratch_dir() + "/quantized";
  fuzz::write_scratch("quantized/config.json", parts[0]);
  fuzz::write_scratch("quantized/model.safetensors", parts[1]);
  const std::string quantize_config = dir + "/quantize_config.json";
  if (parts[2].empty()) std::remove(quantize_config.c_str());
  else fuzz::write_scratch("quantized/quantize_config.json", parts[2]);
  fuzz::expect_clean_error([&] {
    if (!is_hf_quantized_folder(dir)) return;
    std::map<std::string, HfIntWeight> codes;
    fuzz::exercise_model(load_hf_quantized(dir, &codes));
  });
  return 0;
}
