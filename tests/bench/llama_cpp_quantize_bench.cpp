// llama.cpp's own quantizer (llama_model_quantize in node-llama-cpp's prebuilt libllama, opened with dlopen) on
// the same input as `slmopt quantize`, so scripts/quant_table.sh can set the two side by side. A program with
// its own main (built with the bench targets), not a Google Benchmark: one quantization is one measurement.
//
//   llama_cpp_quantize_bench params
//       → the values llama_model_quantize_default_params() returns, as field=value pairs
//   llama_cpp_quantize_bench quantize IN.gguf OUT.gguf PRESET [--imatrix FILE] [--threads N]
//       IN.gguf: an F32 (or F16) GGUF, e.g. from `slmopt compile --format gguf --type f32`. PRESET: Q4_K_M, ...
//       FILE: an importance matrix saved by `slmopt quantize --calib ... --imatrix-out FILE` (canonical weight
//       names → mean x² per input column), handed to llama.cpp under its GGUF tensor names.
//       → {"preset", "imatrix", "threads", "seconds", "output_bytes", "peak_rss_kib"}; seconds: the
//         llama_model_quantize call (reading IN, quantizing, writing OUT). Nothing else is loaded, so the
//         process's peak RSS is the quantizer's (plus the libraries).
//   llama_cpp_quantize_bench weight-bytes MODEL
//       → {"weight_bytes", "parameters"}: every tensor of MODEL as F32 (elements × 4), the "MB of input weights"
//         both quantizers' throughput is divided into.
//   llama_cpp_quantize_bench compare ORIGINAL CANDIDATE TEXT CTX [MAX_WINDOWS]
//       Both models through slmopt's forward pass on TEXT's evaluation windows of CTX tokens (all of them, or the
//       first MAX_WINDOWS; the protocol of eval/perplexity.h, as `slmopt quantize --eval` scores its output).
//       → {"ppl_original", "ppl_output", "ppl_increase_percent", "mean_kl", "top1_agreement", "windows",
//          "tokens_scored", "output_bytes", "bits_per_weight"}
//
// llama_model_quantize, its parameter struct (the mirror of node-llama-cpp's llama.cpp tag, with the check of its
// defaults) and the imatrix hand-over live in tests/unit/ggml_reference.{h,cpp}: llama_quantize_file.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "ggml_reference.h"
#include "slmopt/core/error.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/quant/type_selection.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"

namespace slmopt {
namespace {

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

uint64_t f32_weight_bytes(const Model& model) {
  uint64_t elements = 0;
  for (const Tensor* t : model.ordered_tensors()) elements += static_cast<uint64_t>(t->numel());
  return elements * 4;
}

int run_quantize(const std::vector<std::string>& args) {
  if (args.size() < 3) throw_error(ErrorKind::Usage, "quantize IN.gguf OUT.gguf PRESET [--imatrix FILE] [--threads N]");
  const std::string& in = args[0];
  const std::string& out = args[1];
  const auto preset = preset_from_name(args[2]);
  if (!preset) throw_error(ErrorKind::Usage, "'{}' is not a preset", args[2]);
  std::string imatrix_path;
  int threads = 2;
  for (size_t i = 3; i + 1 < args.size(); i += 2) {
    if (args[i] == "--imatrix") imatrix_path = args[i + 1];
    else if (args[i] == "--threads") threads = std::atoi(args[i + 1].c_str());
    else throw_error(ErrorKind::Usage, "unknown option {}", args[i]);
  }

  // The importance matrix under llama.cpp's tensor names (columns are input features: the Q/K row regrouping
  // of the GGUF writer does not touch them).
  std::map<std::string, std::vector<float>> imatrix;
  if (!imatrix_path.empty()) {
    const SafetensorsFile file = SafetensorsFile::open(imatrix_path);
    for (const Tensor& t : file.tensors()) {
      const std::string gguf_name = gguf_tensor_name(t.name());
      if (gguf_name.empty()) throw_error(ErrorKind::BadInput, "{}: entry '{}' has no GGUF name", imatrix_path, t.name());
      imatrix[gguf_name] = t.to_f32();
    }
  }
  const auto start = std::chrono::steady_clock::now();
  testing::llama_quantize_file(in, out, preset_info(*preset).gguf_file_type, threads,
                               imatrix_path.empty() ? nullptr : &imatrix);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const nlohmann::json result = {{"preset", std::string(preset_info(*preset).name)},
                                 {"imatrix", imatrix_path},
                                 {"threads", threads},
                                 {"seconds", seconds},
                                 {"output_bytes", std::filesystem::file_size(out)},
                                 {"peak_rss_kib", peak_rss_kib()}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

int run_compare(const std::vector<std::string>& args) {
  if (args.size() != 4 && args.size() != 5) throw_error(ErrorKind::Usage, "compare ORIGINAL CANDIDATE TEXT CTX [MAX_WINDOWS]");
  const int64_t max_windows = args.size() == 5 ? std::atoll(args[4].c_str()) : 0;
  const Model original = load_model(args[0]);
  const Model candidate = load_model(args[1]);
  const int64_t ctx = std::atoll(args[3].c_str());
  const Tokenizer tokenizer(original.vocab);
  const std::vector<int32_t> corpus = tokenize_file(tokenizer, args[2]);
  std::optional<int32_t> bos;
  if (original.vocab.add_bos && original.vocab.bos_id) bos = *original.vocab.bos_id;
  const std::vector<EvalWindow> windows = make_eval_windows(corpus, ctx, bos, max_windows);
  if (windows.empty()) throw_error(ErrorKind::Usage, "{}: too short for one window of {}", args[2], ctx);
  const ModelRunner a(original);
  const ModelRunner b(candidate);
  const ComparisonResult c = compare_models(a, b, windows);
  const int64_t params = candidate.parameter_count();
  const nlohmann::json result = {
      {"ppl_original", c.original.perplexity},
      {"ppl_output", c.candidate.perplexity},
      {"ppl_increase_percent", 100.0 * (c.candidate.perplexity / c.original.perplexity - 1.0)},
      {"mean_kl", c.mean_kl},
      {"top1_agreement", c.top1_agreement},
      {"windows", c.original.windows},
      {"tokens_scored", c.original.tokens_scored},
      {"output_bytes", std::filesystem::file_size(args[1])},
      {"bits_per_weight", 8.0 * static_cast<double>(candidate.total_bytes()) / static_cast<double>(params)}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "params") {
    std::printf("%s\n", testing::llama_quantize_default_params_text().c_str());
    return 0;
  }
  if (mode == "quantize") return run_quantize(args);
  if (mode == "weight-bytes" && args.size() == 1) {
    const Model model = load_model(args[0]);
    const nlohmann::json result = {{"weight_bytes", f32_weight_bytes(model)}, {"parameters", model.parameter_count()}};
    std::printf("%s\n", result.dump().c_str());
    return 0;
  }
  if (mode == "compare") return run_compare(args);
  std::fprintf(stderr,
               "usage: %s params | quantize IN.gguf OUT.gguf PRESET [--imatrix FILE] [--threads N] | weight-bytes MODEL | "
               "compare ORIGINAL CANDIDATE TEXT CTX [MAX_WINDOWS]\n",
               argv[0]);
  return 2;
}

}  // namespace
}  // namespace slmopt

int main(int argc, char** argv) {
  try {
    return slmopt::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama_cpp_quantize_bench: %s\n", e.what());
    return 1;
  }
}
