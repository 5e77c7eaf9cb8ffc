#include "slmopt/io/model_loader.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/io/onnx_folder.h"
#include "slmopt/io/onnx_import.h"

namespace slmopt {
namespace {

std::string lower_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace

Model load_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw_error(ErrorKind::Io, "{}: no such file or folder", path);
  if (fs::is_directory(status)) {
    // An ONNX export folder (io/onnx_folder.h): config and tokenizer beside onnx/<graph>, no checkpoint weights.
    if (!file_exists(path + "/model.safetensors") && !file_exists(path + "/model.safetensors.index.json"))
      if (const std::string graph = onnx_folder_model_path(path); !graph.empty()) return load_onnx(graph);
    // GPTQ/AWQ checkpoints load as their dequantized weights (io/hf_gptq.h).
    if (is_hf_quantized_folder(path)) return load_hf_quantized(path);
    return load_hf_model(path);
  }

  const std::string ext = lower_extension(path);
  if (ext == ".gguf") return load_gguf(path);
  if (ext == ".onnx") return load_onnx(path);
  if (ext == ".safetensors" || fs::path(path).filename() == "config.json")
    throw_error(ErrorKind::Unsupported, "{}: pass the Hugging Face model folder ({}), not a file inside it", path,
                fs::absolute(path).parent_path().string());
  throw_error(ErrorKind::Unsupported,
              "{}: unrecognised model format (expected a Hugging Face folder, a .gguf file or a .onnx file)", path);
}

}  // namespace slmopt
