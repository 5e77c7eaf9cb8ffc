// slmopt compile MODEL --format gguf|hf [--type T] -o OUT: write a model for a runtime without changing what it
// computes beyond the storage type (F32/F16/BF16, or Q8_0 for GGUF).
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "report_helpers.h"
#include "slmopt/core/error.h"
#include "slmopt/core/progress.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/quant/block_quantize.h"

namespace slmopt::driver {
namespace {

struct CompileOptions {
  std::string model;
  std::string output;
  std::string format;
  std::string type = "keep";
  bool json = false;
};

void run_compile(const CompileOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<DType> type;
  if (o.type != "keep") {
    type = dtype_from_name(o.type);
    const bool allowed = type && (*type == DType::F32 || *type == DType::F16 || *type == DType::BF16 ||
                                  (*type == DType::Q8_0 && o.format == "gguf"));
    if (!allowed)
      throw_error(ErrorKind::Usage, "--type '{}': compile --format {} takes f32, f16, bf16{} or keep (use "
                  "'slmopt quantize' for other types)", o.type, o.format, o.format == "gguf" ? ", q8_0" : "");
  }
  const Model model = load_model(o.model);
  model.validate();
  size_t tensors = model.tensors().size();

  if (o.format == "gguf") {
    Progress progress("writing GGUF", tensors, true);
    GgufWriteOptions options;
    options.choose_dtype = [&](const std::string&, const Tensor& t) {
      progress.advance();
      return type ? *type : t.dtype();
    };
    options.encode = [](const Tensor& t, DType dtype) {
      const Tensor q = quantize_tensor(t, dtype, nullptr);
      return std::vector<uint8_t>(q.data(), q.data() + q.nbytes());
    };
    write_gguf(model, o.output, options);
  } else if (o.format == "hf") {
    HfWriteOptions options;
    options.float_type = type;
    bool quantized = false;
    for (const auto& [name, t] : model.tensors()) quantized |= traits(t.dtype()).is_quantized;
    if (quantized && !type) options.float_type = DType::F16;  // block types have no safetensors form
    write_hf_model(model, o.output, options);
  } else {
    throw_error(ErrorKind::Usage, "--format '{}': choose gguf or hf", o.format);
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t bytes = path_bytes(o.output);
  if (o.json) {
    print_json({{"input", o.model}, {"output", o.output}, {"format", o.format}, {"type", o.type},
                {"tensors", tensors}, {"bytes", bytes}, {"seconds", seconds}});
  } else {
    std::printf("wrote %s: %zu tensors, %s, %.2f s\n", o.output.c_str(), tensors,
                human_bytes(static_cast<double>(bytes)).c_str(), seconds);
  }
}

}  // namespace

CommandSpec compile_command() {
  return {"compile", "Write a model for a runtime: GGUF (llama.cpp) or a Hugging Face folder",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto o = std::make_shared<CompileOptions>();
            sub.add_option("MODEL", o->model, "Hugging Face folder, .gguf or .onnx file")->required();
            sub.add_option("--format", o->format, "gguf or hf")->required();
            sub.add_option("--type", o->type, "Storage type: keep (default), f32, f16, bf16, q8_0 (gguf only)");
            sub.add_option("-o,--output", o->output, "Output file (gguf) or folder (hf)")->required();
            sub.add_flag("--json", o->json, "Print a JSON summary");
            return [o] { run_compile(*o); };
          }};
}

}  // namespace slmopt::driver
