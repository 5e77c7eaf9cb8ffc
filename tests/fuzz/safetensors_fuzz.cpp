// safetensors: the 8-byte header length, the JSON header and the tensor table (dtypes, shapes, offsets tiling
// the data section), then every tensor decoded to float.
#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/safetensors.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(safetensors) {
  const std::string path = fuzz::write_scratch("model.safetensors", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] {
    const SafetensorsFile file = SafetensorsFile::open(path);
    for (const Tensor& tensor : file.tensors())
      if (tensor.numel() <= 4096) (void)tensor.to_f32();
  });
  return 0;
}
