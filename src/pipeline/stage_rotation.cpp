// The rotation options (quant/rotation.h) as option-table rows: one definition, so the quantize subcommand's
// flags, its recipe keys (`rotate: true`) and the emitted build commands agree.
#include <fmt/format.h>

#include "stages.h"

namespace slmopt::pipeline {

std::vector<OptionSpec> rotation_option_specs() {
  return {
      flag_option("rotate", "Rotate the residual stream and each head's values (randomised Hadamard, norm gains "
                  "folded: the same float model, an ordinary checkpoint) before quantizing; RMSNorm pre-norm models"),
      int_option("rotate-seed", 0, "--rotate: seed of the random signs (and of the odd-width factor)")
          .with_check(OptionCheck::NonNegative),
      string_option("rotate-tied", "auto", "--rotate on a tied model: untie (a separate output head: exact), keep "
                    "(one matrix: the final norm's gain replaced by its mean) or auto (untie unless the tie is exact)")
          .with_members({"auto", "untie", "keep"}),
  };
}

std::optional<RotationOptions> rotation_from_values(const OptionValues& values) {
  if (!values.flag("rotate")) return std::nullopt;
  RotationOptions r;
  r.seed = static_cast<uint64_t>(values.i64("rotate-seed"));
  r.tied = tied_head_rotation_from_name(values.str("rotate-tied"));
  return r;
}

void add_rotation_notes(AccuracyReport& report, const RotationOptions& options, const RotationReport& rotation) {
  report.settings["rotate"] = true;
  report.settings["rotate_seed"] = options.seed;
  report.settings["rotate_tied"] = options.tied == TiedHeadRotation::Auto    ? "auto"
                                   : options.tied == TiedHeadRotation::Untie ? "untie"
                                                                             : "keep";
  report.extra["rotation"] = {{"residual", rotation.residual},
                              {"head", rotation.head},
                              {"was_tied", rotation.was_tied},
                              {"untied", rotation.untied},
                              {"tie_exact", rotation.tie_exact},
                              {"final_gain_spread", rotation.final_gain_spread}};
  std::string note = fmt::format("weights rotated (same float function): residual stream {}, head values {}", rotation.residual,
                                 rotation.head.empty() ? "not rotated" : rotation.head);
  if (rotation.was_tied)
    note += rotation.untied ? "; the tied output head was untied (its final-norm gain folded into it)"
                            : (rotation.tie_exact ? "; the output head stays tied (uniform final-norm gain)"
                                                  : fmt::format("; the output head stays tied, the final norm's gain "
                                                                "(spread {:.3g}) replaced by its mean",
                                                                rotation.final_gain_spread));
  report.notes.push_back(note);
}

}  // namespace slmopt::pipeline
