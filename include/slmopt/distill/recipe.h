// The distillation recipe and the one-call export behind `slmopt distill-export`: student folder + teacher
// soft labels + distill_recipe.json, everything scripts/distill_train.py needs.
//
// distill_recipe.json:
//   {"format": "slmopt-distill-recipe", "version": 1,
//    "teacher": path, "student": "student" (folder, relative to the recipe), "soft_labels": "soft_labels",
//    "student_init": {"from": path, "layers": [0, 2]},
//    "loss": {"temperature": T, "kl_weight": a, "ce_weight": b, "top_k": k,
//             "definition": "a·T²·KL(p_T ‖ q_T) + b·CE, p_T, q_T = softmax(·/T) over the teacher's top-k ids"},
//    "train": {"steps", "learning_rate", "batch_windows", "seed", "weight_decay"},
//    "data_layout": "see soft_labels.json"}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "slmopt/distill/soft_labels.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/model.h"

namespace slmopt {

struct DistillHyperparameters {
  double temperature = 2.0;
  double kl_weight = 0.5;
  double ce_weight = 0.5;
  int64_t steps = 300;
  double learning_rate = 1e-3;
  int64_t batch_windows = 8;
  int64_t seed = 0;
  double weight_decay = 0.0;
};

struct DistillExportOptions {
  std::string out_dir;                // gets student/, soft_labels/, distill_recipe.json
  std::string teacher_path;           // provenance
  std::string student_from;           // provenance: the model the student was cut from ("" = the teacher)
  std::vector<int64_t> student_layers;  // layers of the student source to keep (empty: all)
  SoftLabelOptions labels;
  DistillHyperparameters hyper;
  HfWriteOptions student_write;
};

struct DistillExportResult {
  std::string student_dir, labels_dir, recipe_path;
  SoftLabelManifest manifest;
  int64_t student_parameters = 0;
};

nlohmann::json distill_recipe_json(const DistillExportOptions& options, const SoftLabelManifest& manifest);

// Builds the student (select_student_layers on student_source when layers are given), writes it as an HF
// folder, exports the teacher's soft labels for the corpus, writes the recipe. Error(Usage) for bad options
// (hyper-parameters that are not positive where they must be, weights both zero).
DistillExportResult distill_export(const Model& teacher, const Model& student_source,
                                   const std::vector<int32_t>& corpus, const DistillExportOptions& options);

}  // namespace slmopt
