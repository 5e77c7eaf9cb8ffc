// The delta and patch tools: tensor-level model deltas for over-the-air updates (format and checks in
// io/model_delta.h).
#include <cstdio>

#include "tools.h"
#include "slmopt/io/model_delta.h"
#include "slmopt/pipeline/stage_report.h"

namespace slmopt::pipeline {
namespace {

nlohmann::json stats_json(const DeltaStats& s) {
  return {{"old_bytes", s.old_bytes},       {"new_bytes", s.new_bytes},
          {"patch_bytes", s.patch_bytes},   {"tensors", s.tensors},
          {"tensors_reused", s.tensors_reused}, {"tensors_carried", s.tensors_carried},
          {"reused_bytes", s.reused_bytes}, {"carried_bytes", s.carried_bytes},
          {"pieces", s.pieces}};
}

double percent(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

void run_delta(const OptionValues& v) {
  const DeltaStats s = make_delta(v.str("OLD"), v.str("NEW"), v.str("output"));
  if (v.flag("json")) return print_json(stats_json(s));
  std::printf("wrote %s (%s, %.1f %% of NEW's %s)\n", v.str("output").c_str(),
              human_bytes(static_cast<double>(s.patch_bytes)).c_str(), percent(s.patch_bytes, s.new_bytes),
              human_bytes(static_cast<double>(s.new_bytes)).c_str());
  std::printf("%lld of %lld tensors reused from OLD by hash (%s); %lld tensors carried (%s carried in all)\n",
              (long long)s.tensors_reused, (long long)s.tensors, human_bytes(static_cast<double>(s.reused_bytes)).c_str(),
              (long long)s.tensors_carried, human_bytes(static_cast<double>(s.carried_bytes)).c_str());
}

void run_patch(const OptionValues& v) {
  const DeltaStats s = apply_patch(v.str("OLD"), v.str("PATCH"), v.str("output"));
  if (v.flag("json")) return print_json(stats_json(s));
  std::printf("wrote %s (%s, sha256 verified; %s reused from OLD, %s from the patch)\n", v.str("output").c_str(),
              human_bytes(static_cast<double>(s.new_bytes)).c_str(), human_bytes(static_cast<double>(s.reused_bytes)).c_str(),
              human_bytes(static_cast<double>(s.carried_bytes)).c_str());
}

}  // namespace

ToolInfo delta_tool() {
  ToolInfo t;
  t.name = "delta";
  t.summary = "Tensor-level patch between two GGUF or safetensors versions of a model";
  t.footer = "Unchanged tensors (equal bytes, under any name) are referenced by SHA-256, everything else is carried; "
             "'slmopt patch OLD PATCH -o NEW' rebuilds NEW byte for byte. Patch format: "
             "include/slmopt/io/model_delta.h.";
  t.options = {positional_option("OLD", "The version the device has (.gguf or .safetensors)"),
               positional_option("NEW", "The version to ship"),
               string_option("output", "", "The patch file to write").with_flags("-o,--output").mandatory(),
               flag_option("json", "Print the statistics as JSON")};
  t.run = run_delta;
  return t;
}

ToolInfo patch_tool() {
  ToolInfo t;
  t.name = "patch";
  t.summary = "Rebuild a model from its old version and a patch, verifying every hash";
  t.footer = "Checks OLD's SHA-256, every reused tensor's and carried blob's SHA-256, and NEW's SHA-256; on any "
             "mismatch it exits with code 3 and writes nothing.";
  t.options = {positional_option("OLD", "The version the patch was made from"),
               positional_option("PATCH", "The patch written by 'slmopt delta'"),
               string_option("output", "", "Where to write NEW").with_flags("-o,--output").mandatory(),
               flag_option("json", "Print the statistics as JSON")};
  t.run = run_patch;
  return t;
}

}  // namespace slmopt::pipeline
