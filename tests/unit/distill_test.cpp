// Distillation export: soft-label shards round-trip and hold the teacher's own log-probabilities, windows tile
// the corpus, provenance hashes are right, students keep exactly the chosen layers, and the whole export
// writes a student folder slmopt loads back.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/distill/recipe.h"
#include "slmopt/distill/soft_labels.h"
#include "slmopt/distill/student.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::llama_config;
using testing::make_random_llama;
using testing::random_tokens;

Config teacher_config() { return llama_config(16, 24, 3, 4, 2, 4, 29); }

// Every stored log-prob equals ModelRunner's log-softmax of the teacher's logits at that position, and the ids
// are that row's top-k. Tolerance: 1e-5 absolute for F32 storage, 2e-3 relative for F16 (11-bit mantissa).
void check_export(DType dtype) {
  const Model teacher = make_random_llama(teacher_config(), 31);
  const ModelRunner runner(teacher);
  const auto corpus = random_tokens(47, 29, 9);
  SoftLabelOptions o;
  o.ctx = 8;
  o.top_k = 5;
  o.shard_tokens = 20;  // two windows of 8 per shard
  o.logprob_dtype = dtype;
  o.corpus_path = "random";
  const std::string dir = testing::scratch_dir(std::string("soft_labels_") + std::string(dtype_name(dtype)));
  const SoftLabelManifest written = export_soft_labels(teacher, runner, corpus, o, dir);
  const SoftLabelManifest m = read_soft_label_manifest(dir);
  const auto windows = make_eval_windows(corpus, 8, std::nullopt);
  ASSERT_EQ(m.windows, static_cast<int64_t>(windows.size()));
  EXPECT_EQ(m.windows, 6);                 // 5 full windows of 8 + a last one of 7
  EXPECT_EQ(m.positions, 47);
  EXPECT_EQ(m.targets, 47 - 6);
  ASSERT_EQ(m.shards.size(), 3u);
  EXPECT_EQ(m.teacher_sha256, written.teacher_sha256);
  EXPECT_EQ(m.teacher_sha256, model_sha256(teacher));
  EXPECT_EQ(m.corpus_sha256, corpus_sha256(corpus));
  const double tol_abs = dtype == DType::F32 ? 1e-5 : 0.0;
  const double tol_rel = dtype == DType::F32 ? 0.0 : 2e-3;
  size_t window = 0;
  for (size_t s = 0; s < m.shards.size(); ++s) {
    const SoftLabelShard shard = read_soft_label_shard(dir, m, s);
    size_t offset = 0;
    for (int32_t len : shard.window_lengths) {
      const auto& tokens = windows[window].tokens;
      ASSERT_EQ(static_cast<size_t>(len), tokens.size());
      const RowMatrix logits = runner.logits(tokens);
      std::vector<float> lp(static_cast<size_t>(logits.cols()));
      for (int32_t j = 0; j < len; ++j) {
        EXPECT_EQ(shard.input_ids[offset + static_cast<size_t>(j)], tokens[static_cast<size_t>(j)]);
        log_softmax(row_span(logits, j), lp);
        const auto top = top_k_log_probs(row_span(logits, j), 5);
        for (size_t r = 0; r < 5; ++r) {
          const size_t at = (offset + static_cast<size_t>(j)) * 5 + r;
          EXPECT_EQ(shard.topk_ids[at], top[r].token);
          const double want = lp[static_cast<size_t>(shard.topk_ids[at])];
          EXPECT_NEAR(shard.topk_logprobs[at], want, tol_abs + tol_rel * std::abs(want));
          if (r > 0) {
            EXPECT_LE(shard.topk_logprobs[at], shard.topk_logprobs[at - 1]);
          }
        }
      }
      offset += static_cast<size_t>(len);
      ++window;
    }
  }
  EXPECT_EQ(window, windows.size());
}

TEST(DistillSoftLabels, F32ShardsRoundTripTheTeachersLogProbs) { check_export(DType::F32); }
TEST(DistillSoftLabels, F16ShardsRoundTripTheTeachersLogProbs) { check_export(DType::F16); }

TEST(DistillSoftLabels, RejectsBadOptionsAndBrokenShards) {
  const Model teacher = make_random_llama(teacher_config(), 32);
  const ModelRunner runner(teacher);
  const auto corpus = random_tokens(30, 29, 10);
  const std::string dir = testing::scratch_dir("soft_labels_bad");
  SoftLabelOptions o;
  o.ctx = 8;
  o.top_k = 30;
  EXPECT_THROW(export_soft_labels(teacher, runner, corpus, o, dir), Error);
  o.top_k = 4;
  o.logprob_dtype = DType::BF16;
  EXPECT_THROW(export_soft_labels(teacher, runner, corpus, o, dir), Error);
  o.logprob_dtype = DType::F32;
  SoftLabelManifest m = export_soft_labels(teacher, runner, corpus, o, dir);
  m.top_k = 5;  // a manifest that disagrees with the shard
  EXPECT_THROW(read_soft_label_shard(dir, m, 0), Error);
}

TEST(DistillHashes, Sha256OfCorpusIdsMatchesKnownDigests) {
  EXPECT_EQ(corpus_sha256({0x64636261}), "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589");
  EXPECT_EQ(corpus_sha256(std::vector<int32_t>(250, 0x61616161)),  // 1000 × 'a' (several blocks)
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST(DistillStudent, LayerSelectionRunsExactlyTheChosenBlocks) {
  const Model teacher = make_random_llama(teacher_config(), 33);
  const std::vector<int64_t> layers{0, 2};
  const Model student = select_student_layers(teacher, layers);
  EXPECT_EQ(student.config.num_layers, 2);
  const auto tokens = random_tokens(9, 29, 11);
  const ModelRunner t(teacher);
  RowMatrix h = t.embed(tokens);
  t.run_block(0, h);
  t.run_block(2, h);
  const RowMatrix want = t.final_logits(h);
  const RowMatrix got = ModelRunner(student).logits(tokens);
  EXPECT_EQ((got - want).cwiseAbs().maxCoeff(), 0.0f);  // the same weights, the same kernels: bit-identical
  EXPECT_THROW(select_student_layers(teacher, std::vector<int64_t>{2, 0}), Error);
  EXPECT_THROW(select_student_layers(teacher, std::vector<int64_t>{3}), Error);
}

TEST(DistillStudent, ParsesLayerLists) {
  EXPECT_EQ(parse_layer_list("0,2", 4), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(parse_layer_list("3,0-1", 4), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_THROW(parse_layer_list("0,4", 4), Error);
  EXPECT_THROW(parse_layer_list("1,1", 4), Error);
  EXPECT_THROW(parse_layer_list("a", 4), Error);
  EXPECT_THROW(parse_layer_list("", 4), Error);
}

TEST(DistillExport, WritesALoadableStudentLabelsAndRecipe) {
  const Model teacher = load_model(testing::model_path("llama-5m-kjv"));
  const Tokenizer tokenizer(teacher.vocab);
  const std::string text = read_text_file(testing::data_path("kjv-calib.txt")).substr(0, 4000);
  const auto corpus = tokenizer.encode(text, false);
  DistillExportOptions o;
  o.out_dir = testing::scratch_dir("distill_export");
  o.teacher_path = "models/llama-5m-kjv";
  o.student_layers = {0, 2};
  o.labels.ctx = 64;
  o.labels.top_k = 8;
  o.labels.max_windows = 3;
  const DistillExportResult r = distill_export(teacher, teacher, corpus, o);
  const Model student = load_model(r.student_dir);
  EXPECT_EQ(student.config.num_layers, 2);
  EXPECT_EQ(student.tensor("model.layers.1.mlp.down_proj.weight").dtype(), DType::BF16);
  EXPECT_EQ(r.manifest.windows, 3);
  EXPECT_EQ(r.manifest.positions, 3 * 64);
  const auto recipe = nlohmann::json::parse(read_text_file(r.recipe_path));
  EXPECT_EQ(recipe.at("student_init").at("layers"), nlohmann::json::array({0, 2}));
  EXPECT_EQ(recipe.at("loss").at("top_k"), 8);
  EXPECT_DOUBLE_EQ(recipe.at("loss").at("temperature").get<double>(), 2.0);
  // The student computes what the teacher's blocks 0 and 2 compute.
  const ModelRunner t(teacher);
  const std::vector<int32_t> window(corpus.begin(), corpus.begin() + 16);
  RowMatrix h = t.embed(window);
  t.run_block(0, h);
  t.run_block(2, h);
  EXPECT_EQ((ModelRunner(student).logits(window) - t.final_logits(h)).cwiseAbs().maxCoeff(), 0.0f);
  o.hyper.temperature = 0;
  EXPECT_THROW(distill_export(teacher, teacher, corpus, o), Error);
}

// The Python trainer's own llama forward pass agrees with ModelRunner on the exported student, a short training
// run saves a folder slmopt loads, and the weights moved. Skipped when python3 with torch is not installed (torch
// is an optional dependency); SLMOPT_PYTHON picks the interpreter (default /usr/bin/python3, Debian's).
TEST(DistillTrainScript, TorchForwardMatchesModelRunnerAndTrainedFolderLoads) {
  const char* env = std::getenv("SLMOPT_PYTHON");
  const std::string python = env ? env : "/usr/bin/python3";
  if (std::system((python + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " has no torch/numpy";
  const Model teacher = make_random_llama(teacher_config(), 34);
  const auto corpus = random_tokens(40, 29, 12);
  DistillExportOptions o;
  o.out_dir = testing::scratch_dir("distill_script");
  o.student_layers = {0, 2};
  o.labels.ctx = 10;
  o.labels.top_k = 6;
  o.hyper.steps = 3;
  o.hyper.batch_windows = 2;
  const DistillExportResult r = distill_export(teacher, teacher, corpus, o);
  const std::string out = o.out_dir + "/trained", dump = o.out_dir + "/logits.safetensors";
  const std::string cmd = python + " " + testing::source_dir() + "/scripts/distill_train.py " + o.out_dir + " " + out +
                          " --threads 1 --dump-logits " + dump + " > " + o.out_dir + "/train.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_text_file(o.out_dir + "/train.log");

  const Model student = load_model(r.student_dir);
  const auto windows = make_eval_windows(corpus, 10, std::nullopt);
  const RowMatrix want = ModelRunner(student).logits(windows[0].tokens);
  const SafetensorsFile file = SafetensorsFile::open(dump);
  ASSERT_NE(file.find("logits"), nullptr);
  const std::vector<float> got = file.find("logits")->to_f32();
  ASSERT_EQ(static_cast<int64_t>(got.size()), want.size());
  const double scale = want.cwiseAbs().maxCoeff();
  ASSERT_GT(scale, 0.1);
  for (int64_t i = 0; i < want.size(); ++i)  // float32 in both, different summation orders: 1e-5 of the range
    ASSERT_NEAR(got[static_cast<size_t>(i)], want.data()[i], 1e-5 * scale) << "logit " << i;

  const Model trained = load_model(out);
  EXPECT_EQ(trained.config.num_layers, 2);
  const RowMatrix after = ModelRunner(trained).logits(windows[0].tokens);
  EXPECT_GT((after - want).cwiseAbs().maxCoeff(), 1e-4);  // three AdamW steps moved the weights
}

}  // namespace
}  // namespace slmopt
