// ONNX import: the protobuf (part 0) with a config.json beside it (part 1, when present), into the IR.
#include <cstdio>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "slmopt/io/onnx_import.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(onnx) {
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), 2);
  const std::string path = fuzz::write_scratch("onnx/model.onnx", parts[0]);
  const std::string config = fuzz::scratch_dir() + "/onnx/config.json";
  if (parts[1].empty()) std::remove(config.c_str());
  else fuzz::write_scratch("onnx/config.json", parts[1]);
  fuzz::expect_clean_error([&] { fuzz::exercise_model(load_onnx(path)); });
  return 0;
}
