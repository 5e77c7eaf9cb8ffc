// The compile stage: write a model for a runtime. GGUF and HF change nothing but the storage type
// (F32/F16/BF16, or Q8_0 for GGUF); ONNX also offers the weight-only integer encodings ONNX Runtime runs natively
// (int8 QDQ, int8 with dynamic activations, int4 MatMulNBits).
#include <algorithm>
#include <cstdio>
#include <optional>

#include "stages.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/core/progress.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/onnx_folder.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/pipeline/stage_report.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/int_quantize.h"
#include "slmopt/quant/tensor_quantizer.h"

namespace slmopt::pipeline {
namespace {

// Writes the export folder (its path into `folder`) and returns the integer codes written (empty for a float
// export): ONNX Runtime computes with them, and the report evaluates the same codes dequantized.
IntQuantizedWeights write_onnx(const Model& model, const OptionValues& v, std::string& folder) {
  const std::string type = v.str("type");
  const std::string type_name = type == "keep" ? "f32" : type;
  const auto weight_type = onnx_weight_type_from_name(type_name);
  if (!weight_type)
    throw_error(ErrorKind::Usage, "--type '{}': compile --format onnx takes f32, f16, int8, int8-dynamic or int4",
                type);
  OnnxExportOptions options;
  options.weight_type = *weight_type;
  options.fused_ops = v.flag("fused-ops");
  options.f16_embeddings = v.flag("f16-embeddings");
  options.accuracy_level = static_cast<int>(v.i64("accuracy-level"));
  options.external_data_threshold = static_cast<uint64_t>(v.f64("external-data-mib") * 1024 * 1024);
  IntQuantizedWeights codes;
  if (const int bits = onnx_weight_type_bits(*weight_type)) {
    const int64_t block_size = v.i64("block-size");
    const bool asymmetric = v.flag("asymmetric");
    // A model whose linears are already GGUF Q4_0 exports its own codes exactly; otherwise round to nearest.
    bool all_q4_0 = true;
    for (const auto& [name, t] : model.tensors())
      if (names::is_linear_weight(name)) all_q4_0 &= t.dtype() == DType::Q4_0;
    if (bits == 4 && all_q4_0 && block_size == 32 && !asymmetric) codes = int_weights_from_q4_0(model);
    else codes = quantize_linear_weights_rtn(model, {bits, bits == 8 ? 0 : block_size, !asymmetric});
    options.quantized = &codes;
  }
  export_onnx_folder(model, v.str("output"), options);
  folder = onnx_folder_target(v.str("output"), options.weight_type).folder;
  return codes;
}

// The accuracy report a recipe's compile target (or --report / --eval) asks for, in the quantize stage's form so
// the manifest and the combined report read it the same way: the written model read back, its tensors' stored
// types and relative error against the input, and the evaluation against the reference.
void write_compile_report(PipelineContext& ctx, const OptionValues& v, EvalTextOptions& eval,
                          const std::string& type_name, const IntQuantizedWeights& onnx_codes, double write_seconds,
                          const Model& input, const RotationReport* rotation) {
  const auto start = std::chrono::steady_clock::now();
  const std::string format = v.str("format"), output = v.str("output");
  AccuracyReport report = base_report("compile", input, output, format);
  report.method = "compile";
  report.type = type_name == "keep" && format == "onnx" ? "f32" : type_name;
  if (rotation) add_rotation_notes(report, *rotation_from_values(v), *rotation);
  const Model written = onnx_codes.empty() ? load_model(output) : with_dequantized_weights(input, onnx_codes);
  fill_output_stats(report, written);
  if (format != "gguf" && report.parameters > 0)  // HF/ONNX readers hand back floats: size on disk is honest there
    report.bits_per_weight = 8.0 * static_cast<double>(report.output_bytes) / static_cast<double>(report.parameters);
  for (const Tensor* t : written.ordered_tensors()) {
    const Tensor* before = input.find(t->name());
    TensorReport r;
    r.name = t->name();
    r.shape = t->shape();
    r.source_type = before ? std::string(dtype_name(before->dtype())) : "-";
    r.output_type = std::string(dtype_name(t->dtype()));
    if (before && before->shape() == t->shape()) r.relative_error = relative_error(*before, *t, nullptr);
    report.tensors.push_back(r);
  }
  if (eval.given()) {
    std::optional<Model> loaded_reference;
    if (!v.str("reference").empty()) loaded_reference = load_model(v.str("reference"));
    const Model& reference_model = loaded_reference ? *loaded_reference : ctx.reference();
    const auto& windows = ctx.eval_windows(reference_model, eval);
    const ModelRunner reference(reference_model), candidate(written);
    report.eval = to_eval_comparison(compare_models(reference, candidate, windows), eval);
    const std::vector<EvalWindow> few(windows.begin(), windows.begin() + std::min<ptrdiff_t>(4, windows.size()));
    report.extra["eval_tokens_per_second"] = evaluate_perplexity(candidate, few).tokens_per_second;
  }
  add_gates(report, v.f64("max-ppl-increase"), v.f64("max-kl"));
  report.timings["write"] = write_seconds;
  report.timings["eval"] = seconds_since(start);
  finish_report(report, output, v.str("report"), v.flag("json"), ctx.in_recipe);
}

void run_compile(PipelineContext& ctx, const OptionValues& v) {
  const auto start = std::chrono::steady_clock::now();
  const std::string format = v.str("format"), type_name = v.str("type");
  std::string output = v.str("output");
  std::optional<DType> type;
  if (type_name != "keep" && format != "onnx") {
    type = dtype_from_name(type_name);
    const bool allowed = type && (*type == DType::F32 || *type == DType::F16 || *type == DType::BF16 ||
                                  (*type == DType::Q8_0 && format == "gguf"));
    if (!allowed)
      throw_error(ErrorKind::Usage, "--type '{}': compile --format {} takes f32, f16, bf16{} or keep (use "
                  "'slmopt quantize' for other types)", type_name, format, format == "gguf" ? ", q8_0" : "");
  }
  // --rotate: the rotated model (the same function) is what gets written; evaluations compare with the input.
  const std::optional<RotationOptions> rotation = rotation_from_values(v);
  RotationReport rotation_report;
  const Model& model = rotation ? ctx.rotated_input(*rotation, &rotation_report) : ctx.input();
  size_t tensors = model.tensors().size();
  IntQuantizedWeights onnx_codes;

  if (format == "gguf") {
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
    write_gguf(model, output, options);
  } else if (format == "hf") {
    HfWriteOptions options;
    options.float_type = type;
    bool quantized = false;
    for (const auto& [name, t] : model.tensors()) quantized |= traits(t.dtype()).is_quantized;
    if (quantized && !type) options.float_type = DType::F16;  // block types have no safetensors form
    write_hf_model(model, output, options);
  } else if (format == "onnx") {
    onnx_codes = write_onnx(model, v, output);
  } else {
    throw_error(ErrorKind::Usage, "--format '{}': choose gguf, hf or onnx", format);
  }

  const double seconds = seconds_since(start);
  EvalTextOptions eval = eval_from_values(v, "--eval");
  if (!v.str("report").empty() || eval.given()) {
    write_compile_report(ctx, v, eval, type_name, onnx_codes, seconds, model, rotation ? &rotation_report : nullptr);
    return;
  }
  const uint64_t bytes = path_bytes(output);
  if (ctx.in_recipe) return;
  if (v.flag("json")) {
    print_json({{"input", v.str("MODEL")}, {"output", output}, {"format", format}, {"type", type_name},
                {"tensors", tensors}, {"bytes", bytes}, {"seconds", seconds}});
  } else {
    std::printf("wrote %s: %zu tensors, %s, %.2f s\n", output.c_str(), tensors,
                human_bytes(static_cast<double>(bytes)).c_str(), seconds);
  }
}

}  // namespace

StageInfo compile_stage() {
  StageInfo s;
  s.name = "compile";
  s.summary = "Write a model for a runtime: GGUF (llama.cpp), ONNX with KV cache (ONNX Runtime), or a Hugging Face folder";
  s.options = {
      positional_option("MODEL", "Hugging Face folder, .gguf or .onnx file"),
      string_option("format", "", "gguf, hf or onnx (default: from the output name: .gguf, .onnx)"),
      string_option("type", "keep", "gguf/hf: keep (default), f32, f16, bf16, q8_0 (gguf only); "
                    "onnx: f32 (default), f16, int8 (weight-only QDQ), int8-dynamic, int4 (MatMulNBits)"),
      string_option("output", "", "Output: .gguf file, HF folder, or ONNX export folder (DIR or DIR/onnx/NAME.onnx)")
          .with_flags("-o,--output").mandatory().as_path().cli_only(),
      int_option("block-size", 32, "onnx int4: quantization block along the input (16..256, power of 2; default 32)")
          .with_members({"16", "32", "64", "128", "256"}),
      flag_option("asymmetric", "onnx int4/int8: asymmetric codes with zero points"),
      flag_option("fused-ops", "onnx: ORT contrib ops (SimplifiedLayerNormalization, GroupQueryAttention, "
                  "DynamicQuantizeMatMul)"),
      flag_option("f16-embeddings", "onnx: store the embedding table (and a tied head) as fp16"),
      int_option("accuracy-level", 4, "onnx int4: MatMulNBits accuracy_level (0-4, default 4: int8 compute)")
          .with_check(OptionCheck::Range, 0, 4),
      float_option("external-data-mib", 1800, "onnx: move weights to OUT.data when they exceed this many MiB "
                   "(default 1800; protobuf's limit is 2 GiB)").with_check(OptionCheck::Positive),
  };
  // A report (as quantize writes it) when --report or --eval is given; a recipe's compile targets always get one.
  for (auto& spec : eval_option_specs("--eval")) s.options.push_back(spec);
  for (auto& spec : rotation_option_specs()) s.options.push_back(spec);
  s.options.push_back(string_option("reference", "", "Evaluate against this model instead of the input")
                          .with_check(OptionCheck::ExistingPath).as_path().cli_only());
  s.options.push_back(string_option("report", "", "Write an accuracy report to PATH.{json,md} (default with --eval: "
                                    "beside the output, OUT.report.{json,md})").as_path().cli_only());
  s.options.push_back(float_option("max-ppl-increase", -1, "Exit with code 6 when perplexity rises by more than PCT "
                                   "percent (needs --eval)").with_check(OptionCheck::NonNegative).cli_only());
  s.options.push_back(float_option("max-kl", -1, "Exit with code 6 when mean KL(input||output) exceeds X (needs "
                                   "--eval)").with_check(OptionCheck::NonNegative).cli_only());
  s.options.push_back(flag_option("json", "Print a JSON summary (the report, when one is written)").cli_only());
  s.run = run_compile;
  return s;
}

}  // namespace slmopt::pipeline
