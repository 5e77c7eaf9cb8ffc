// Teacher soft labels (see soft_labels.h for the files). Windows are cut by make_eval_windows; each shard's
// windows run in parallel through ModelRunner::for_each_window, and only the top-k of each logit row is kept
// (a [ctx, vocab] logit block lives only while its window is being reduced), so memory stays at one shard.
#include "slmopt/distill/soft_labels.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/core/sha256.h"
#include "slmopt/core/progress.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/text/dataset.h"

namespace slmopt {
namespace {

template <typename T>
Tensor tensor_of(const std::string& name, std::vector<int64_t> shape, DType dtype, const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return Tensor::owned(name, std::move(shape), dtype, std::move(bytes));
}

std::string shard_name(size_t index, size_t count) {
  return fmt::format("soft-labels-{:05d}-of-{:05d}.safetensors", index + 1, count);
}

nlohmann::json manifest_json(const SoftLabelManifest& m) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& s : m.shards)
    shards.push_back(
        {{"file", s.file}, {"first_window", s.first_window}, {"windows", s.windows}, {"positions", s.positions}});
  const std::string lp(*safetensors_dtype_name(m.logprob_dtype));  // "F32" / "F16", as in the shards
  return {{"format", "slmopt-soft-labels"},
          {"version", 1},
          {"teacher", {{"path", m.teacher_path}, {"name", m.teacher_name}, {"sha256", m.teacher_sha256}}},
          {"corpus", {{"path", m.corpus_path}, {"tokens", m.corpus_tokens}, {"sha256", m.corpus_sha256}}},
          {"vocab_size", m.vocab_size},
          {"ctx", m.ctx},
          {"bos", m.bos ? nlohmann::json(*m.bos) : nlohmann::json(nullptr)},
          {"top_k", m.top_k},
          {"logprob_dtype", lp},
          {"windows", m.windows},
          {"positions", m.positions},
          {"targets", m.targets},
          {"tensors",
           {{"input_ids", {{"dtype", "I32"}, {"shape", {"S"}}}},
            {"window_lengths", {{"dtype", "I32"}, {"shape", {"W"}}}},
            {"topk_ids", {{"dtype", "I32"}, {"shape", {"S", "top_k"}}}},
            {"topk_logprobs", {{"dtype", lp}, {"shape", {"S", "top_k"}}}}}},
          {"shards", std::move(shards)}};
}

}  // namespace

std::string model_sha256(const Model& model) {
  Sha256 h;
  for (const Tensor* t : model.ordered_tensors()) {
    const std::string head = t->name() + '\0' + std::string(dtype_name(t->dtype())) + '\0' +
                             shape_to_string(t->shape()) + '\0';
    h.update(head.data(), head.size());
    h.update(t->data(), t->nbytes());
  }
  return h.hex_digest();
}

std::string corpus_sha256(const std::vector<int32_t>& corpus) {
  Sha256 h;
  for (int32_t id : corpus) {
    const uint32_t u = static_cast<uint32_t>(id);
    const uint8_t le[4] = {static_cast<uint8_t>(u), static_cast<uint8_t>(u >> 8), static_cast<uint8_t>(u >> 16),
                           static_cast<uint8_t>(u >> 24)};
    h.update(le, 4);
  }
  return h.hex_digest();
}

SoftLabelManifest export_soft_labels(const Model& teacher, const ModelRunner& runner,
                                     const std::vector<int32_t>& corpus, const SoftLabelOptions& options,
                                     const std::string& dir) {
  const int64_t vocab = runner.vocab_size();
  if (options.top_k < 1 || options.top_k > vocab)
    throw_error(ErrorKind::Usage, "--top-k {} must be between 1 and the vocabulary size {}", options.top_k, vocab);
  if (options.shard_tokens < 1) throw_error(ErrorKind::Usage, "--shard-tokens must be positive");
  if (options.logprob_dtype != DType::F32 && options.logprob_dtype != DType::F16)
    throw_error(ErrorKind::Usage, "soft-label log-probabilities are stored as F32 or F16, not {}",
                dtype_name(options.logprob_dtype));
  const int64_t ctx = options.ctx > 0 ? options.ctx : std::min<int64_t>(teacher.config.max_position, 512);
  if (ctx < 2 || ctx > teacher.config.max_position)
    throw_error(ErrorKind::Usage, "--ctx {} must be between 2 and the teacher's context length {}", ctx,
                teacher.config.max_position);
  // The same BOS rule as evaluation (tools/slmopt/eval_windows.cpp), so the student sees the windows eval scores.
  std::optional<int32_t> bos;
  if (teacher.vocab.add_bos && teacher.vocab.bos_id) bos = *teacher.vocab.bos_id;
  const auto windows = make_eval_windows(corpus, ctx, bos, options.max_windows);
  if (windows.empty())
    throw_error(ErrorKind::BadInput, "{}: the corpus ({} tokens) is too short for one window of {} tokens",
                options.corpus_path, corpus.size(), ctx);

  SoftLabelManifest m;
  m.teacher_path = options.teacher_path;
  m.teacher_name = teacher.config.name;
  m.teacher_sha256 = model_sha256(teacher);
  m.corpus_path = options.corpus_path;
  m.corpus_sha256 = corpus_sha256(corpus);
  m.corpus_tokens = static_cast<int64_t>(corpus.size());
  m.vocab_size = vocab;
  m.ctx = ctx;
  m.top_k = options.top_k;
  m.bos = bos;
  m.logprob_dtype = options.logprob_dtype;
  m.windows = static_cast<int64_t>(windows.size());

  // Shard boundaries: whole windows, at most shard_tokens positions (a longer window gets a shard alone).
  std::vector<size_t> starts{0};
  int64_t filled = 0;
  for (size_t w = 0; w < windows.size(); ++w) {
    const auto len = static_cast<int64_t>(windows[w].tokens.size());
    if (filled > 0 && filled + len > options.shard_tokens) {
      starts.push_back(w);
      filled = 0;
    }
    filled += len;
  }
  starts.push_back(windows.size());
  make_directories(dir);

  const size_t n_shards = starts.size() - 1;
  const int64_t k = options.top_k;
  Progress progress("teacher soft labels", windows.size(), true);  // drawn on a terminal only
  for (size_t s = 0; s < n_shards; ++s) {
    const size_t w0 = starts[s], w1 = starts[s + 1];
    std::vector<int64_t> offsets{0};
    std::vector<std::vector<int32_t>> tokens;
    for (size_t w = w0; w < w1; ++w) {
      tokens.push_back(windows[w].tokens);
      offsets.push_back(offsets.back() + static_cast<int64_t>(windows[w].tokens.size()));
    }
    const int64_t S = offsets.back();
    std::vector<int32_t> ids, lengths, top_ids(static_cast<size_t>(S * k));
    std::vector<float> top_lp(static_cast<size_t>(S * k));
    for (const auto& t : tokens) {
      ids.insert(ids.end(), t.begin(), t.end());
      lengths.push_back(static_cast<int32_t>(t.size()));
    }
    runner.for_each_window(tokens, [&](size_t i, const RowMatrix& logits) {
      for (int64_t j = 0; j < logits.rows(); ++j) {
        const auto top = top_k_log_probs(row_span(logits, j), k);
        const size_t base = static_cast<size_t>((offsets[i] + j) * k);
        for (int64_t r = 0; r < k; ++r) {
          top_ids[base + static_cast<size_t>(r)] = top[static_cast<size_t>(r)].token;
          top_lp[base + static_cast<size_t>(r)] = top[static_cast<size_t>(r)].log_prob;
        }
      }
      progress.advance();
    });
    const Tensor t_ids = tensor_of("input_ids", {S}, DType::I32, ids);
    const Tensor t_len = tensor_of("window_lengths", {static_cast<int64_t>(lengths.size())}, DType::I32, lengths);
    const Tensor t_top = tensor_of("topk_ids", {S, k}, DType::I32, top_ids);
    const Tensor t_lp = Tensor::from_f32_as("topk_logprobs", {S, k}, top_lp, options.logprob_dtype);
    const std::string file = shard_name(s, n_shards);
    write_safetensors(dir + "/" + file, {&t_ids, &t_len, &t_top, &t_lp},
                      {{"format", "slmopt-soft-labels"}, {"teacher_sha256", m.teacher_sha256}});
    m.shards.push_back({file, static_cast<int64_t>(w0), static_cast<int64_t>(w1 - w0), S});
    m.positions += S;
    for (size_t w = w0; w < w1; ++w) m.targets += static_cast<int64_t>(windows[w].tokens.size()) - 1;
  }
  progress.finish();
  write_file_atomic(dir + "/" + kSoftLabelManifest, manifest_json(m).dump(2) + "\n");
  return m;
}

SoftLabelManifest read_soft_label_manifest(const std::string& dir) {
  const std::string path = dir + "/" + kSoftLabelManifest;
  SoftLabelManifest m;
  try {
    const auto j = nlohmann::json::parse(read_text_file(path));
    if (j.at("format") != "slmopt-soft-labels" || j.at("version") != 1)
      throw_error(ErrorKind::BadInput, "{}: not a version-1 slmopt soft-label manifest", path);
    m.teacher_path = j.at("teacher").at("path").get<std::string>();
    m.teacher_name = j.at("teacher").at("name").get<std::string>();
    m.teacher_sha256 = j.at("teacher").at("sha256").get<std::string>();
    m.corpus_path = j.at("corpus").at("path").get<std::string>();
    m.corpus_tokens = j.at("corpus").at("tokens");
    m.corpus_sha256 = j.at("corpus").at("sha256").get<std::string>();
    m.vocab_size = j.at("vocab_size");
    m.ctx = j.at("ctx");
    if (!j.at("bos").is_null()) m.bos = j.at("bos").get<int32_t>();
    m.top_k = j.at("top_k");
    const auto lp = j.at("logprob_dtype").get<std::string>();
    if (lp != "F32" && lp != "F16") throw_error(ErrorKind::BadInput, "{}: logprob_dtype '{}' is not F32 or F16", path, lp);
    m.logprob_dtype = lp == "F32" ? DType::F32 : DType::F16;
    m.windows = j.at("windows");
    m.positions = j.at("positions");
    m.targets = j.at("targets");
    for (const auto& s : j.at("shards"))
      m.shards.push_back({s.at("file").get<std::string>(), s.at("first_window").get<int64_t>(),
                          s.at("windows").get<int64_t>(), s.at("positions").get<int64_t>()});
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::BadInput, "{}: malformed soft-label manifest: {}", path, e.what());
  }
  return m;
}

SoftLabelShard read_soft_label_shard(const std::string& dir, const SoftLabelManifest& manifest, size_t shard) {
  if (shard >= manifest.shards.size())
    throw_error(ErrorKind::Usage, "{}: soft-label shard {} does not exist ({} shards)", dir, shard,
                manifest.shards.size());
  const auto& info = manifest.shards[shard];
  const std::string path = dir + "/" + info.file;
  const SafetensorsFile file = SafetensorsFile::open(path);
  const int64_t S = info.positions, k = manifest.top_k;
  auto get = [&](const std::string& name, const std::vector<int64_t>& shape, DType dtype) -> const Tensor& {
    const Tensor* t = file.find(name);
    if (!t) throw_error(ErrorKind::BadInput, "{}: tensor '{}' is missing", path, name);
    if (t->shape() != shape || t->dtype() != dtype)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' is {} {}, the manifest implies {} {}", path, name,
                  dtype_name(t->dtype()), shape_to_string(t->shape()), dtype_name(dtype), shape_to_string(shape));
    return *t;
  };
  auto ints = [](const Tensor& t) {
    std::vector<int32_t> v(static_cast<size_t>(t.numel()));
    std::memcpy(v.data(), t.data(), v.size() * sizeof(int32_t));
    return v;
  };
  SoftLabelShard out;
  out.input_ids = ints(get("input_ids", {S}, DType::I32));
  out.window_lengths = ints(get("window_lengths", {info.windows}, DType::I32));
  out.topk_ids = ints(get("topk_ids", {S, k}, DType::I32));
  out.topk_logprobs = get("topk_logprobs", {S, k}, manifest.logprob_dtype).to_f32();
  int64_t total = 0;
  for (int32_t len : out.window_lengths) total += len;
  if (total != S) throw_error(ErrorKind::BadInput, "{}: window lengths add up to {}, not {}", path, total, S);
  return out;
}

}  // namespace slmopt
