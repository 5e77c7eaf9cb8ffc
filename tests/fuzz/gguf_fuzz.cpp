// GGUF: the file reader (header, metadata key/values, tensor infos, alignment, offsets) from memory, then the
// model reader that builds the IR (architecture keys, tensor layouts, the vocabulary) from the file.
#include <vector>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(gguf) {
  fuzz::expect_clean_error([&] {
    const GgufFile file = GgufFile::parse("fuzz.gguf", data, size, nullptr);
    // The first and the last row of every tensor decode: a view past its bytes faults at the last row, and a
    // block format's decoder runs on whatever the file holds. Whole tensors cost a decode per element and find
    // nothing more (the decoders' loops do not depend on the data): a third of each execution went to them.
    std::vector<float> row;
    for (const GgufTensorInfo& info : file.tensors()) {
      const Tensor view = file.view(info);
      if (view.numel() == 0 || view.cols() > 65536) continue;
      row.resize(static_cast<size_t>(view.cols()));
      view.rows_to_f32(0, 1, row.data());
      view.rows_to_f32(view.rows() - 1, view.rows(), row.data());
    }
  });
  const std::string path = fuzz::write_scratch("model.gguf", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] { fuzz::exercise_model(load_gguf(path)); });
  return 0;
}
