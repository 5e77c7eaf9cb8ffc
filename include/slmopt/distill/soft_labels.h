// Offline distillation data: the teacher's top-k next-token log-probabilities for every corpus token, stored as
// sharded safetensors beside a JSON manifest, so a student can be trained later without running the teacher.
//
// Windows follow the evaluation protocol of text/dataset.h (make_eval_windows): consecutive non-overlapping
// windows of ctx tokens ([BOS] + ctx−1 corpus tokens when the model has a BOS), the last one possibly shorter.
// Every corpus token is a target of exactly one window position.
//
// Shard file soft-labels-NNNNN-of-MMMMM.safetensors (whole windows, at most shard_tokens positions unless one
// window alone is longer), S = positions in the shard:
//   input_ids       I32 [S]     the windows' tokens, concatenated in window order
//   window_lengths  I32 [W]     length of each of the shard's W windows (they tile input_ids)
//   topk_ids        I32 [S, k]  at window position j: the teacher's k most likely next tokens (for position
//                               j+1), most likely first, ties lower id first
//   topk_logprobs   F32 or F16 [S, k]  their log-probabilities under the teacher's full-vocabulary softmax
//                               (temperature 1, not renormalised over the k)
// The window's last position predicts the token after the window; it is stored but has no in-window target.
//
// Manifest soft_labels.json:
//   {"format": "slmopt-soft-labels", "version": 1,
//    "teacher": {"path", "name", "sha256"},   sha256 over each tensor in Model::ordered_tensors order of:
//                                             name, dtype name, shape as decimal text, raw bytes
//    "corpus": {"path", "tokens", "sha256"},  sha256 of the corpus ids as int32 little-endian
//    "vocab_size", "ctx", "bos" (id or null), "top_k", "logprob_dtype" ("F32"|"F16"),
//    "windows", "positions", "targets" (positions with an in-window target),
//    "tensors": {"input_ids": {"dtype": "I32", "shape": ["S"]}, ...},
//    "shards": [{"file", "first_window", "windows", "positions"}, ...]}
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slmopt/exec/model_runner.h"
#include "slmopt/ir/model.h"

namespace slmopt {

inline const std::string kSoftLabelManifest = "soft_labels.json";

struct SoftLabelOptions {
  int64_t ctx = 0;                  // window length; 0: min(model context, 512)
  int64_t top_k = 32;
  int64_t shard_tokens = 1 << 20;   // positions per shard
  DType logprob_dtype = DType::F32; // F32 or F16
  int64_t max_windows = 0;          // 0: the whole corpus
  std::string teacher_path;         // provenance only
  std::string corpus_path;
};

struct SoftLabelShardInfo {
  std::string file;
  int64_t first_window = 0, windows = 0, positions = 0;
};

struct SoftLabelManifest {
  std::string teacher_path, teacher_name, teacher_sha256;
  std::string corpus_path, corpus_sha256;
  int64_t corpus_tokens = 0, vocab_size = 0, ctx = 0, top_k = 0;
  std::optional<int32_t> bos;
  DType logprob_dtype = DType::F32;
  int64_t windows = 0, positions = 0, targets = 0;
  std::vector<SoftLabelShardInfo> shards;
};

// Runs the teacher over the corpus and writes the shards and the manifest (last) into `dir` (created when
// missing; each file goes through AtomicFile). Error(Usage) for top_k outside 1..vocab, ctx outside
// 2..max_position, shard_tokens < 1 or a log-prob dtype other than F32/F16; Error(BadInput) when the corpus
// yields no window.
SoftLabelManifest export_soft_labels(const Model& teacher, const ModelRunner& runner,
                                     const std::vector<int32_t>& corpus, const SoftLabelOptions& options,
                                     const std::string& dir);

// SHA-256 of a model's tensors as described in the manifest comment.
std::string model_sha256(const Model& model);
std::string corpus_sha256(const std::vector<int32_t>& corpus);

// --- reading back (tests, tools) ---
SoftLabelManifest read_soft_label_manifest(const std::string& dir);

struct SoftLabelShard {
  std::vector<int32_t> input_ids, window_lengths, topk_ids;  // topk_ids: [positions · k]
  std::vector<float> topk_logprobs;                          // [positions · k], F16 decoded
};
// Error(BadInput) naming the file when a tensor is missing or its shape disagrees with the manifest.
SoftLabelShard read_soft_label_shard(const std::string& dir, const SoftLabelManifest& manifest, size_t shard);

}  // namespace slmopt
