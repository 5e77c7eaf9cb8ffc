// GGUF: the file reader (header, metadata key/values, tensor infos, alignment, offsets) from memory, then the
// model reader that builds the IR (architecture keys, tensor layouts, the vocabulary) from the file.
#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(gguf) {
  fuzz::expect_clean_error([&] {
    const GgufFile file = GgufFile::parse("fuzz.gguf", data, size, nullptr);
    for (const GgufTensorInfo& info : file.tensors()) {
      const Tensor view = file.view(info);
      if (view.numel() <= 4096) (void)view.to_f32();
    }
  });
  const std::string path = fuzz::write_scratch("model.gguf", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] { fuzz::exercise_model(load_gguf(path)); });
  return 0;
}
