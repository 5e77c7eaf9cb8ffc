// distill-export: student folder, teacher soft labels and the recipe that ties them together (recipe.h).
#include "slmopt/distill/recipe.h"

#include <filesystem>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/interrupt.h"
#include "slmopt/core/temp_folder.h"
#include "slmopt/distill/student.h"
#include "slmopt/exec/model_runner.h"

namespace slmopt {
namespace {

void check_hyper(const DistillHyperparameters& h) {
  if (!(h.temperature > 0)) throw_error(ErrorKind::Usage, "--temperature must be positive, got {}", h.temperature);
  if (h.kl_weight < 0 || h.ce_weight < 0 || h.kl_weight + h.ce_weight <= 0)
    throw_error(ErrorKind::Usage, "--kl-weight and --ce-weight must be non-negative and not both zero");
  if (h.steps < 1 || h.batch_windows < 1 || !(h.learning_rate > 0))
    throw_error(ErrorKind::Usage, "--steps, --batch and --lr must be positive");
}

namespace fs = std::filesystem;

}  // namespace

nlohmann::json distill_recipe_json(const DistillExportOptions& o, const SoftLabelManifest& m) {
  const auto& h = o.hyper;
  return {{"format", "slmopt-distill-recipe"},
          {"version", 1},
          {"teacher", o.teacher_path},
          {"student", "student"},
          {"soft_labels", "soft_labels"},
          {"student_init",
           {{"from", o.student_from.empty() ? o.teacher_path : o.student_from}, {"layers", o.student_layers}}},
          {"loss",
           {{"temperature", h.temperature},
            {"kl_weight", h.kl_weight},
            {"ce_weight", h.ce_weight},
            {"top_k", m.top_k},
            {"definition",
             "kl_weight * T^2 * KL(p_T || q_T) + ce_weight * CE(next token); p_T = softmax(teacher top-k "
             "log-probs / T), q_T = softmax(student logits at the teacher's top-k ids / T), both renormalised over "
             "the top-k; averaged over positions with an in-window target"}}},
          {"train",
           {{"steps", h.steps},
            {"learning_rate", h.learning_rate},
            {"batch_windows", h.batch_windows},
            {"seed", h.seed},
            {"weight_decay", h.weight_decay}}},
          {"data_layout", "soft_labels/soft_labels.json: shards of whole windows; row j of a window predicts its "
                          "token j+1"}};
}

DistillExportResult distill_export(const Model& teacher, const Model& student_source,
                                   const std::vector<int32_t>& corpus, const DistillExportOptions& options) {
  check_hyper(options.hyper);
  if (options.out_dir.empty()) throw_error(ErrorKind::Usage, "distill-export needs an output folder");
  if (student_source.config.vocab_size != teacher.config.vocab_size)
    throw_error(ErrorKind::Usage, "the student ({} tokens) and the teacher ({} tokens) must share a vocabulary",
                student_source.config.vocab_size, teacher.config.vocab_size);
  const Model student =
      options.student_layers.empty() ? student_source : select_student_layers(student_source, options.student_layers);
  ModelRunner check(student);  // a student that cannot run must not be written

  // The kit is assembled in a hidden folder beside the target and renamed into place when complete: an error or
  // an interrupt (core/interrupt.h removes the folder) leaves no kit with a student but no labels or recipe.
  const fs::path target = fs::path(options.out_dir).lexically_normal();
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string leaf = target.filename().string();
  if (leaf.empty() || leaf == "." || leaf == "..") throw_error(ErrorKind::Usage, "{}: name an output folder", options.out_dir);
  std::error_code ec;
  const bool replacing = fs::exists(target, ec);
  if (replacing && !(fs::is_directory(target, ec) &&
                     (fs::is_empty(target, ec) || fs::exists(target / "distill_recipe.json", ec))))
    throw_error(ErrorKind::Usage, "{}: exists and is not a distillation kit (no distill_recipe.json); choose a new "
                "or empty folder", options.out_dir);
  make_directories(parent.string());
  TempFolder staging(parent.string(), "." + leaf + ".tmp.");
  const fs::path temp = staging.path();

  DistillExportResult r;
  write_hf_model(student, (temp / "student").string(), options.student_write);
  r.student_parameters = student.parameter_count();
  const ModelRunner runner(teacher);
  r.manifest = export_soft_labels(teacher, runner, corpus, options.labels, (temp / "soft_labels").string());
  write_file_atomic((temp / "distill_recipe.json").string(), distill_recipe_json(options, r.manifest).dump(2) + "\n");

  // An earlier kit moves aside first, so a failed rename leaves it in place.
  const fs::path old = parent / ("." + leaf + ".old." + std::to_string(::getpid()));
  if (replacing) {
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    if (ec) throw_error(ErrorKind::Io, "{}: cannot move the earlier kit aside: {}", target.string(), ec.message());
  }
  {
    const auto hold = hold_off_interrupt_cleanup();  // Ctrl-C's cleanup must not walk the kit while it moves
    fs::rename(temp, target, ec);
  }
  if (ec) {
    std::error_code ignored;
    if (replacing) fs::rename(old, target, ignored);
    throw_error(ErrorKind::Io, "{}: cannot move the kit into place: {}", target.string(), ec.message());
  }
  staging.release();
  if (replacing) fs::remove_all(old, ec);
  r.student_dir = options.out_dir + "/student";
  r.labels_dir = options.out_dir + "/soft_labels";
  r.recipe_path = options.out_dir + "/distill_recipe.json";
  return r;
}

}  // namespace slmopt
