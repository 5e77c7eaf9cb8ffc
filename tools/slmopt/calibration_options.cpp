#include "calibration_options.h"

#include <algorithm>

#include "eval_windows.h"
#include "slmopt/core/error.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/text/dataset.h"

namespace slmopt::driver {

nlohmann::json CalibrationOptions::to_json() const {
  return {{"calib", text_path.empty() ? tokens_path : text_path},
          {"calib_samples", samples},
          {"calib_seqlen", seqlen},
          {"seed", seed}};
}

void add_calibration_options(CLI::App& sub, CalibrationOptions& o) {
  auto* text = sub.add_option("--calib", o.text_path, "Calibration text (UTF-8)")->check(CLI::ExistingFile);
  auto* tokens = sub.add_option("--calib-tokens", o.tokens_path,
                                "Calibration token ids (whitespace-separated, or little-endian uint32 .bin)")
                     ->check(CLI::ExistingFile);
  text->excludes(tokens);
  sub.add_option("--calib-samples", o.samples, "Calibration windows (default 128)")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--calib-seqlen", o.seqlen, "Tokens per calibration window (default: min(model context, 512))")
      ->check(CLI::Range(2, 1 << 20));
  sub.add_option("--seed", o.seed, "Seed for choosing calibration windows (default 0)");
}

std::vector<std::vector<int32_t>> build_calibration_windows(const Model& model, CalibrationOptions& o) {
  if (o.seqlen == 0) o.seqlen = std::min<int64_t>(model.config.max_position, 512);
  if (o.seqlen > model.config.max_position)
    throw_error(ErrorKind::Usage, "--calib-seqlen {} exceeds the model's context length {}", o.seqlen,
                model.config.max_position);
  const auto corpus = load_corpus(model, o.text_path, o.tokens_path);
  std::optional<int32_t> bos;
  if (model.vocab.add_bos && model.vocab.bos_id) bos = *model.vocab.bos_id;
  try {
    return sample_calibration_windows(corpus, o.samples, o.seqlen, o.seed, bos);
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
    m.columns[t.name()] = t.to_f32();
  }
  return m;
}

}  // namespace slmopt::driver
