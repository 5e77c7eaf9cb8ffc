#include "slmopt/pipeline/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "slmopt/core/error.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/text/tokenizer.h"

namespace slmopt::pipeline {

nlohmann::json CalibTextOptions::to_json() const {
  return {{"calib", text_path.empty() ? tokens_path : text_path},
          {"calib_samples", samples},
          {"calib_seqlen", seqlen},
          {"seed", seed}};
}

std::string CalibTextOptions::key() const {
  return fmt::format("{}|{}|{}|{}|{}", text_path, tokens_path, samples, seqlen, seed);
}

std::string EvalTextOptions::key() const {
  return fmt::format("{}|{}|{}|{}", text_path, tokens_path, ctx, max_windows);
}

std::vector<OptionSpec> calibration_option_specs(int64_t default_samples, const std::string& samples_help,
                                                 int64_t default_seqlen, const std::string& seqlen_help,
                                                 const std::string& seed_help) {
  return {
      string_option("calib", "", "Calibration text (UTF-8)")
          .with_check(OptionCheck::ExistingFile).as_path().excluding("calib-tokens"),
      string_option("calib-tokens", "", "Calibration token ids (whitespace-separated, or little-endian uint32 .bin)")
          .with_check(OptionCheck::ExistingFile).as_path(),
      int_option("calib-samples", default_samples, samples_help).with_check(OptionCheck::Range, 1, 1 << 20),
      int_option("calib-seqlen", default_seqlen, seqlen_help).with_check(OptionCheck::Range, 2, 1 << 20),
      int_option("seed", 0, seed_help).with_check(OptionCheck::NonNegative),
  };
}

CalibTextOptions calibration_from_values(const OptionValues& v) {
  CalibTextOptions o;
  o.text_path = v.str("calib");
  o.tokens_path = v.str("calib-tokens");
  o.samples = v.i64("calib-samples");
  o.seqlen = v.i64("calib-seqlen");
  o.seed = static_cast<uint64_t>(v.i64("seed"));
  return o;
}

std::vector<OptionSpec> eval_option_specs(const std::string& text_flag) {
  return {
      string_option(text_flag.substr(2), "", "Evaluation text (UTF-8), tokenized with the model's tokenizer")
          .with_check(OptionCheck::ExistingFile).as_path().excluding("tokens"),
      string_option("tokens", "",
                    "Evaluation token ids: whitespace-separated decimal ids, or little-endian uint32 in a .bin file")
          .with_check(OptionCheck::ExistingFile).as_path(),
      int_option("ctx", 0, "Window length in tokens (default: min(model context, 512))")
          .with_check(OptionCheck::Range, 2, static_cast<double>(int64_t{1} << 20)),
      int_option("max-windows", 0, "Evaluate at most this many windows (default: all)")
          .with_check(OptionCheck::NonNegative),
  };
}

EvalTextOptions eval_from_values(const OptionValues& v, const std::string& text_flag) {
  EvalTextOptions o;
  o.text_path = v.str(text_flag.substr(2));
  o.tokens_path = v.str("tokens");
  o.ctx = v.i64("ctx");
  o.max_windows = v.i64("max-windows");
  return o;
}

std::vector<int32_t> load_corpus(const Model& model, const std::string& text_path, const std::string& tokens_path) {
  if (!tokens_path.empty()) return read_token_file(tokens_path, model.config.vocab_size);
  if (model.vocab.kind == VocabKind::None)
    throw_error(ErrorKind::Usage, "{}: the model has no tokenizer; pass token ids with --tokens", model.source_path);
  const Tokenizer tokenizer(model.vocab);
  return tokenize_file(tokenizer, text_path);
}

namespace {

// A window length: the requested one, or by default the model's context up to 512; never past the context.
int64_t window_length(const Model& model, int64_t requested, const char* option) {
  if (requested == 0) return std::min<int64_t>(model.config.max_position, 512);
  if (requested > model.config.max_position)
    throw_error(ErrorKind::Usage, "{} {} exceeds the model's context length {}", option, requested,
                model.config.max_position);
  return requested;
}

// The text or token file's ids, and the BOS every window starts with when the model adds one.
struct WindowSource {
  std::vector<int32_t> corpus;
  std::optional<int32_t> bos;
};

WindowSource window_source(const Model& model, const std::string& text_path, const std::string& tokens_path) {
  WindowSource source;
  if (model.vocab.add_bos && model.vocab.bos_id) source.bos = *model.vocab.bos_id;
  source.corpus = load_corpus(model, text_path, tokens_path);
  // A token file that already begins with BOS (ids written as the tokenizer encodes a document) would otherwise
  // start the first window with two.
  if (source.bos && !source.corpus.empty() && source.corpus.front() == *source.bos)
    source.corpus.erase(source.corpus.begin());
  return source;
}

}  // namespace

std::vector<EvalWindow> build_eval_windows(const Model& model, EvalTextOptions& options) {
  if (options.text_path.empty() && options.tokens_path.empty())
    throw_error(ErrorKind::Usage, "an evaluation text (--text) or token file (--tokens) is required");
  options.ctx = window_length(model, options.ctx, "--ctx");
  const WindowSource source = window_source(model, options.text_path, options.tokens_path);
  auto windows = make_eval_windows(source.corpus, options.ctx, source.bos, options.max_windows);
  if (windows.empty())
    throw_error(ErrorKind::Usage, "{}: too short for one evaluation window ({} tokens)",
                options.text_path.empty() ? options.tokens_path : options.text_path, source.corpus.size());
  return windows;
}

std::vector<std::vector<int32_t>> build_calibration_windows(const Model& model, CalibTextOptions& o) {
  o.seqlen = window_length(model, o.seqlen, "--calib-seqlen");
  const WindowSource source = window_source(model, o.text_path, o.tokens_path);
  try {
    return sample_calibration_windows(source.corpus, o.samples, o.seqlen, o.seed, source.bos);
  } catch (const Error& e) {
    throw Error(e.kind(), (o.text_path.empty() ? o.tokens_path : o.text_path) + ": " + e.what());
  }
}

void save_importance(const ImportanceMatrix& importance, const std::string& path) {
  std::vector<Tensor> tensors;
  tensors.reserve(importance.columns.size());
  for (const auto& [name, values] : importance.columns)
    tensors.push_back(Tensor::from_f32(name, {static_cast<int64_t>(values.size())}, values));
  std::vector<const Tensor*> pointers;
  for (const auto& t : tensors) pointers.push_back(&t);
  write_safetensors(path, pointers, {{"format", "slmopt-imatrix"}, {"tokens", std::to_string(importance.tokens)}});
}

ImportanceMatrix load_importance(const std::string& path, const Model& model) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  auto format = file.metadata().find("format");
  if (format == file.metadata().end() || format->second != "slmopt-imatrix")
    throw_error(ErrorKind::BadInput, "{}: not an slmopt importance matrix (metadata format != slmopt-imatrix)", path);
  ImportanceMatrix m;
  if (auto tokens = file.metadata().find("tokens"); tokens != file.metadata().end())
    m.tokens = std::strtoll(tokens->second.c_str(), nullptr, 10);
  for (const Tensor& t : file.tensors()) {
    const Tensor* weight = model.find(t.name());
    if (weight == nullptr)
      throw_error(ErrorKind::BadInput, "{}: entry '{}' names no tensor of the model", path, t.name());
    if (t.rank() != 1 || t.dim(0) != weight->cols())
      throw_error(ErrorKind::BadInput, "{}: entry '{}' has shape {}, the weight has {} input columns", path, t.name(),
                  shape_to_string(t.shape()), weight->cols());
    std::vector<float> values = t.to_f32();
    // Importance is a mean of squared activations: a NaN or a negative value would steer every block's search
    // without any error showing.
    for (size_t column = 0; column < values.size(); ++column)
      if (!std::isfinite(values[column]) || values[column] < 0.0f)
        throw_error(ErrorKind::BadInput, "{}: entry '{}' has {} at column {} (importance is finite and not negative)",
                    path, t.name(), values[column], column);
    m.columns[t.name()] = std::move(values);
  }
  return m;
}

}  // namespace slmopt::pipeline
