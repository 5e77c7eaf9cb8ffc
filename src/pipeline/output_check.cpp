#include "slmopt/pipeline/output_check.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <unistd.h>

#include "slmopt/core/error.h"
#include "slmopt/eval/report.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/onnx_folder.h"

namespace slmopt::pipeline {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool trailing_slash(const std::string& path) { return !path.empty() && path.back() == '/'; }

// Absolute, normalised, symlinks resolved as far as the path exists.
fs::path canonical_path(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path), ec);
  if (ec) p = fs::absolute(path).lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return fs::path(s);
}

// True when `inner` lies strictly inside folder `outer`.
bool is_inside(const fs::path& inner, const fs::path& outer) {
  const fs::path rel = inner.lexically_relative(outer);
  return !rel.empty() && rel != "." && *rel.begin() != "..";
}

// The nearest folder at or above `path` that exists (the current folder for a relative path with none).
fs::path nearest_existing(const fs::path& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  return p;
}

void check_writable(const fs::path& folder, const std::string& option, const std::string& path) {
  const fs::path existing = nearest_existing(folder);
  std::error_code ec;
  if (!fs::is_directory(existing, ec))
    throw_error(ErrorKind::Usage, "{} {}: {} is a file, not a folder", option, path, existing.string());
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    throw_error(ErrorKind::Io, "{} {}: cannot write into {}: {}", option, path, existing.string(), std::strerror(errno));
}

// Creates `folder` and its missing parents, recording each one created (outermost first).
void create_folders(const fs::path& folder, OutputPlan& plan, const std::string& option, const std::string& path) {
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path p = fs::absolute(folder).lexically_normal(); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  std::reverse(missing.begin(), missing.end());
  for (const auto& p : missing) {
    if (!fs::create_directory(p, ec) && ec)
      throw_error(ErrorKind::Io, "{} {}: cannot create folder {}: {}", option, path, p.string(), ec.message());
    plan.created_folders.push_back(p.string());
  }
}

// A written file's folder: checked and created.
void prepare_parent(const std::string& path, OutputPlan& plan, const std::string& option) {
  const fs::path parent = fs::absolute(path).lexically_normal().parent_path();
  check_writable(parent, option, path);
  create_folders(parent, plan, option, path);
}

std::string positional_input(const StageInfo& stage, const OptionValues& values) {
  for (const auto& o : stage.options)
    if (o.positional()) return values.str(o.name);
  return "";
}

OnnxWeightType onnx_type_of(const OptionValues& values) {
  if (!values.has("type")) return OnnxWeightType::F32;
  const std::string type = values.str("type");
  return onnx_weight_type_from_name(type == "keep" ? "f32" : type).value_or(OnnxWeightType::F32);
}

// Resolves --format from the output name, or refuses a contradiction. Returns the format ("" for stages
// without one: their output is a folder).
std::string resolve_format(const StageInfo& stage, OptionValues& values, const std::string& out) {
  const std::string by_name = format_from_output_name(out);
  if (lower(fs::path(out).extension().string()) == ".safetensors")
    throw_error(ErrorKind::Usage, "-o {}: slmopt writes a Hugging Face checkpoint as a folder (config.json, "
                "model.safetensors, tokenizer); name the folder and use --format hf", out);
  if (!stage.find_option("format")) return "";
  std::string format = values.str("format");
  if (!values.given("format")) {
    if (!by_name.empty()) format = by_name;
    if (format.empty())
      throw_error(ErrorKind::Usage, "-o {}: cannot tell the output format from the name; give --format (gguf, hf or "
                  "onnx), or name a .gguf file", out);
    values.set("format", format);
  } else if (!by_name.empty() && by_name != format) {
    throw_error(ErrorKind::Usage, "-o {} names a .{} output, but --format is {}; make them agree", out, by_name,
                format);
  }
  std::error_code ec;
  if (format == "gguf" && (trailing_slash(out) || fs::is_directory(out, ec)))
    throw_error(ErrorKind::Usage, "-o {}: is a folder, but a GGUF output is one file (e.g. {}/model.gguf)", out,
                fs::path(out).lexically_normal().string());
  if ((format == "hf" || format == "onnx") && fs::exists(out, ec) && !fs::is_directory(out, ec) && by_name.empty())
    throw_error(ErrorKind::Usage, "-o {}: is a file, but a {} output is a folder", out, format == "hf" ? "Hugging Face" : "ONNX");
  return format;
}

}  // namespace

std::string format_from_output_name(const std::string& output) {
  if (trailing_slash(output)) return "";
  const std::string ext = lower(fs::path(output).extension().string());
  if (ext == ".gguf") return "gguf";
  if (ext == ".onnx") return "onnx";
  return "";
}

OutputPlan prepare_outputs(const StageInfo& stage, OptionValues& values) {
  OutputPlan plan;
  for (const auto& spec : stage.options) {
    if (spec.required_unless.empty() || !std::get_if<std::string>(&values.value(spec.name))) continue;
    if (!values.str(spec.name).empty() || values.flag(spec.required_unless)) continue;
    std::string flags = spec.flags;
    std::replace(flags.begin(), flags.end(), ',', '/');
    throw_error(ErrorKind::Usage, "{} is required (unless --{})", flags, spec.required_unless);
  }

  const std::string out = stage.find_option("output") ? values.str("output") : "";
  if (!out.empty()) {
    const std::string format = resolve_format(stage, values, out);
    // What the stage writes as a whole: the file, or the folder (an ONNX export's folder, whatever -o names).
    std::optional<OnnxFolderTarget> onnx_target;
    if (format == "onnx") onnx_target = onnx_folder_target(out, onnx_type_of(values));
    const std::string written = onnx_target ? onnx_target->folder : out;
    const bool folder_output = format != "gguf";

    const std::string input = positional_input(stage, values);
    if (!input.empty()) {
      const fs::path in = canonical_path(input), w = canonical_path(written);
      std::error_code ec;
      if (w == in) throw_error(ErrorKind::Usage, "-o {}: is the input model; write the output elsewhere", out);
      if (fs::is_directory(in, ec) && is_inside(w, in) && fs::exists(w, ec))
        throw_error(ErrorKind::Usage, "-o {}: would replace {} inside the input model {}; write the output elsewhere",
                    out, w.lexically_relative(in).string(), input);
      if (folder_output && is_inside(in, w))
        throw_error(ErrorKind::Usage, "-o {}: the output folder holds the input model {}; write the output elsewhere",
                    out, input);
    }
    if (onnx_target) check_onnx_folder_target(*onnx_target);
    if (format == "hf") check_hf_output_folder(out);
    prepare_parent(written, plan, "-o");
  }
  for (const char* name : {"report", "scores", "imatrix-out"}) {
    if (!stage.find_option(name) || values.str(name).empty()) continue;
    std::string path = values.str(name);
    if (std::string(name) == "report") path = report_paths(out, path).first;
    prepare_parent(path, plan, std::string("--") + name);
  }
  return plan;
}

void remove_created_folders(const OutputPlan& plan) {
  std::error_code ec;
  for (auto it = plan.created_folders.rbegin(); it != plan.created_folders.rend(); ++it)
    if (fs::is_directory(*it, ec) && fs::is_empty(*it, ec)) fs::remove(*it, ec);
}

}  // namespace slmopt::pipeline
