// slmopt compile MODEL --format gguf|hf|onnx [--type T] -o OUT: write a model for a runtime. GGUF and HF change
// nothing but the storage type (F32/F16/BF16, or Q8_0 for GGUF); ONNX also offers the weight-only integer
// encodings ONNX Runtime runs natively (int8 QDQ, int8 with dynamic activations, int4 MatMulNBits).
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "report_helpers.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/core/progress.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/onnx_export.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/int_quantize.h"

namespace slmopt::driver {
namespace {

struct CompileOptions {
  std::string model;
  std::string output;
  std::string format;
  std::string type = "keep";
  // ONNX only
  int64_t block_size = 32;
  bool asymmetric = false;
  bool fused_ops = false;
  bool f16_embeddings = false;
  int accuracy_level = 4;
  double external_data_mib = 1800;
  bool json = false;
};

void write_onnx(const Model& model, const CompileOptions& o) {
  const std::string type_name = o.type == "keep" ? "f32" : o.type;
  const auto weight_type = onnx_weight_type_from_name(type_name);
  if (!weight_type)
    throw_error(ErrorKind::Usage, "--type '{}': compile --format onnx takes f32, f16, int8, int8-dynamic or int4",
                o.type);
  OnnxExportOptions options;
  options.weight_type = *weight_type;
  options.fused_ops = o.fused_ops;
  options.f16_embeddings = o.f16_embeddings;
  options.accuracy_level = o.accuracy_level;
  options.external_data_threshold = static_cast<uint64_t>(o.external_data_mib * 1024 * 1024);
  IntQuantizedWeights codes;
  if (const int bits = onnx_weight_type_bits(*weight_type)) {
    // A model whose linears are already GGUF Q4_0 exports its own codes exactly; otherwise round to nearest.
    bool all_q4_0 = true;
    for (const auto& [name, t] : model.tensors())
      if (names::is_linear_weight(name)) all_q4_0 &= t.dtype() == DType::Q4_0;
    if (bits == 4 && all_q4_0 && o.block_size == 32 && !o.asymmetric) codes = int_weights_from_q4_0(model);
    else codes = quantize_linear_weights_rtn(model, {bits, bits == 8 ? 0 : o.block_size, !o.asymmetric});
    options.quantized = &codes;
  }
  export_onnx(model, o.output, options);
}

void run_compile(const CompileOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<DType> type;
  if (o.type != "keep" && o.format != "onnx") {
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
    options.encode_streamed = [](const Tensor& t, DType dtype, const std::function<void(const uint8_t*, size_t)>& write) {
      // Row chunks of about 4 MB, the mapped input dropped behind each (see TensorQuantizer::encode_streamed).
      const size_t out_row = row_bytes(dtype, t.cols()), in_row = t.nbytes() / static_cast<size_t>(t.rows());
      const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>((size_t{4} << 20) / out_row));
      std::vector<uint8_t> buffer(static_cast<size_t>(std::min(chunk, t.rows())) * out_row);
      for (int64_t r0 = 0; r0 < t.rows(); r0 += chunk) {
        const int64_t r1 = std::min(t.rows(), r0 + chunk);
        quantize_rows(t, dtype, r0, r1, nullptr, Encoder::Fast, buffer.data());
        write(buffer.data(), static_cast<size_t>(r1 - r0) * out_row);
        release_mapped_pages(t.data() + static_cast<size_t>(r0) * in_row, static_cast<size_t>(r1 - r0) * in_row);
      }
    };
    write_gguf(model, o.output, options);
  } else if (o.format == "hf") {
    HfWriteOptions options;
    options.float_type = type;
    bool quantized = false;
    for (const auto& [name, t] : model.tensors()) quantized |= traits(t.dtype()).is_quantized;
    if (quantized && !type) options.float_type = DType::F16;  // block types have no safetensors form
    write_hf_model(model, o.output, options);
  } else if (o.format == "onnx") {
    write_onnx(model, o);
  } else {
    throw_error(ErrorKind::Usage, "--format '{}': choose gguf, hf or onnx", o.format);
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
  return {"compile", "Write a model for a runtime: GGUF (llama.cpp), ONNX with KV cache (ONNX Runtime), or a Hugging Face folder",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto o = std::make_shared<CompileOptions>();
            sub.add_option("MODEL", o->model, "Hugging Face folder, .gguf or .onnx file")->required();
            sub.add_option("--format", o->format, "gguf, hf or onnx")->required();
            sub.add_option("--type", o->type,
                           "gguf/hf: keep (default), f32, f16, bf16, q8_0 (gguf only); "
                           "onnx: f32 (default), f16, int8 (weight-only QDQ), int8-dynamic, int4 (MatMulNBits)");
            sub.add_option("-o,--output", o->output, "Output file (.gguf, .onnx) or folder (hf)")->required();
            sub.add_option("--block-size", o->block_size, "onnx int4: quantization block along the input (16..256, power of 2; default 32)")
                ->check(CLI::IsMember({16, 32, 64, 128, 256}));
            sub.add_flag("--asymmetric", o->asymmetric, "onnx int4/int8: asymmetric codes with zero points");
            sub.add_flag("--fused-ops", o->fused_ops,
                         "onnx: ORT contrib ops (SimplifiedLayerNormalization, GroupQueryAttention, DynamicQuantizeMatMul)");
            sub.add_flag("--f16-embeddings", o->f16_embeddings, "onnx: store the embedding table (and a tied head) as fp16");
            sub.add_option("--accuracy-level", o->accuracy_level, "onnx int4: MatMulNBits accuracy_level (0-4, default 4: int8 compute)")
                ->check(CLI::Range(0, 4));
            sub.add_option("--external-data-mib", o->external_data_mib,
                           "onnx: move weights to OUT.data when they exceed this many MiB (default 1800; protobuf's limit is 2 GiB)")
                ->check(CLI::PositiveNumber);
            sub.add_flag("--json", o->json, "Print a JSON summary");
            return [o] { run_compile(*o); };
          }};
}

}  // namespace slmopt::driver
