// HF GPTQ / AWQ checkpoint writer and reader. Byte layouts are in hf_gptq.h; this file packs and unpacks them
// and assembles the folder the way write_hf_model does (src/io/model_folder.h: staged, then moved in).
#include "slmopt/io/hf_gptq.h"

#include "family.h"
#include "hf_gptq_bits.h"
#include "model_folder.h"
#include "hf_tensor_map.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"
#include "json_strict.h"

namespace slmopt {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using hf_gptq_bits::kAwqOrder;
using hf_gptq_bits::put_bits;

std::string base_of(const std::string& weight_name) {
  const std::string suffix = ".weight";
  if (weight_name.size() <= suffix.size() ||
      weight_name.compare(weight_name.size() - suffix.size(), suffix.size(), suffix) != 0)
    throw_error(ErrorKind::Internal, "'{}' is not a weight name", weight_name);
  return weight_name.substr(0, weight_name.size() - suffix.size());
}

Tensor i32_tensor(std::string name, std::vector<int64_t> shape, const std::vector<uint32_t>& words) {
  std::vector<uint8_t> bytes(words.size() * 4);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return Tensor::owned(std::move(name), std::move(shape), DType::I32, std::move(bytes));
}

// The grid and shape alone (before any file is written).
void check_grid(const std::string& name, const HfIntWeight& w, HfQuantFormat format) {
  if (w.group_size < 1) throw_error(ErrorKind::Usage, "{}: group size {}", name, w.group_size);
  if (const std::string why = hf_quantized_misfit(format, w.bits, w.group_size, w.rows, w.cols); !why.empty())
    throw_error(ErrorKind::Usage, "{}: {}", name, why);
}

// The codes, scales and zeros of a made weight (the writer's staging folder is dropped if this throws).
void check_values(const std::string& name, const HfIntWeight& w, HfQuantFormat format) {
  const int b = w.bits;
  const size_t n = static_cast<size_t>(w.rows * w.cols), g = static_cast<size_t>(w.rows * w.groups());
  if (w.codes.size() != n || w.scales.size() != g || w.zeros.size() != g)
    throw_error(ErrorKind::Internal, "{}: packed weight sizes disagree with [{}, {}]", name, w.rows, w.cols);
  for (int32_t z : w.zeros)
    if (z < (format == HfQuantFormat::Gptq ? 1 : 0) || z > (1 << b) - (format == HfQuantFormat::Gptq ? 0 : 1))
      throw_error(ErrorKind::Usage, "{}: zero point {} cannot be stored in the {} format", name, z,
                  hf_quant_format_name(format));
}

std::vector<Tensor> pack_gptq(const std::string& base, const HfIntWeight& w) {
  const int b = w.bits;
  const int64_t in = w.cols, out = w.rows, groups = w.groups();
  const uint32_t mask = (1u << b) - 1;
  std::vector<uint32_t> qweight(static_cast<size_t>(in * b / 32 * out), 0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      put_bits(qweight, static_cast<size_t>(o), static_cast<size_t>(out), i, b, w.codes[static_cast<size_t>(o * in + i)]);
  const int64_t zw = out * b / 32;
  std::vector<uint32_t> qzeros(static_cast<size_t>(groups * zw), 0);
  std::vector<float> scales(static_cast<size_t>(groups * out));
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t o = 0; o < out; ++o) {
      const size_t p = static_cast<size_t>(o * groups + g);
      put_bits(qzeros, static_cast<size_t>(g * zw), 1, o, b, static_cast<uint32_t>(w.zeros[p] - 1) & mask);
      scales[static_cast<size_t>(g * out + o)] = w.scales[p];
    }
  std::vector<uint32_t> g_idx(static_cast<size_t>(in));
  for (int64_t i = 0; i < in; ++i) g_idx[static_cast<size_t>(i)] = static_cast<uint32_t>(i / w.group_size);
  std::vector<Tensor> t;
  t.push_back(i32_tensor(base + ".qweight", {in * b / 32, out}, qweight));
  t.push_back(i32_tensor(base + ".qzeros", {groups, zw}, qzeros));
  t.push_back(Tensor::from_f32_as(base + ".scales", {groups, out}, scales, DType::F16));
  t.push_back(i32_tensor(base + ".g_idx", {in}, g_idx));
  return t;
}

std::vector<Tensor> pack_awq(const std::string& base, const HfIntWeight& w) {
  const int64_t in = w.cols, out = w.rows, groups = w.groups(), ow = out / 8;
  std::vector<uint32_t> qweight(static_cast<size_t>(in * ow), 0), qzeros(static_cast<size_t>(groups * ow), 0);
  std::vector<float> scales(static_cast<size_t>(groups * out));
  for (int64_t j = 0; j < ow; ++j)
    for (int k = 0; k < 8; ++k) {
      const int64_t o = 8 * j + kAwqOrder[static_cast<size_t>(k)];
      for (int64_t i = 0; i < in; ++i)
        qweight[static_cast<size_t>(i * ow + j)] |= static_cast<uint32_t>(w.codes[static_cast<size_t>(o * in + i)]) << (4 * k);
      for (int64_t g = 0; g < groups; ++g)
        qzeros[static_cast<size_t>(g * ow + j)] |= static_cast<uint32_t>(w.zeros[static_cast<size_t>(o * groups + g)]) << (4 * k);
    }
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t o = 0; o < out; ++o) scales[static_cast<size_t>(g * out + o)] = w.scales[static_cast<size_t>(o * groups + g)];
  std::vector<Tensor> t;
  t.push_back(i32_tensor(base + ".qweight", {in, ow}, qweight));
  t.push_back(i32_tensor(base + ".qzeros", {groups, ow}, qzeros));
  t.push_back(Tensor::from_f32_as(base + ".scales", {groups, out}, scales, DType::F16));
  return t;
}

// One group per row is written as group size −1 (each linear has its own row length).
bool whole_row(const HfIntWeight& w) { return w.group_size == w.cols; }

json quantization_config(const HfIntWeight& w, const HfQuantizedWriteOptions& o) {
  const int64_t group = whole_row(w) ? -1 : w.group_size;
  if (o.format == HfQuantFormat::Awq)
    return {{"quant_method", "awq"}, {"zero_point", true}, {"q_group_size", group}, {"w_bit", w.bits},
            {"version", "gemm"}};
  return {{"bits", w.bits},
          {"group_size", group},
          {"desc_act", o.desc_act},
          {"sym", w.symmetric},
          {"damp_percent", o.damp_percent},
          {"static_groups", o.static_groups},
          {"true_sequential", o.true_sequential},
          {"quant_method", "gptq"},
          {"checkpoint_format", "gptq"}};
}

// "model.layers.3.mlp.down_proj" → {"model.layers.", 3, "mlp.down_proj"}; nullopt outside the blocks.
struct BlockModule {
  int64_t layer;
  std::string inner;
};
std::optional<BlockModule> block_module(const std::string& module) {
  static const std::regex re(R"(^[A-Za-z_.]*?\.(\d+)\.(.+)$)");
  std::smatch m;
  if (!std::regex_match(module, m, re)) return std::nullopt;
  return BlockModule{std::stoll(m[1].str()), m[2].str()};
}

// Names the block linears left in float, for the loaders that would otherwise expect packed tensors for every
// linear: gptqmodel/vLLM `dynamic` negative matches ("-:" + a regex on the module name), optimum/transformers
// `modules_in_block_to_quantize` (one list for every block, so only when every block quantizes the same ones),
// AWQ's `modules_to_not_convert` (substrings of the module name: full names, so "layers.1." never matches 11).
void add_float_modules(json& qc, HfQuantFormat format, const std::vector<std::string>& packed,
                       const std::vector<std::string>& kept) {
  if (format == HfQuantFormat::Awq) {
    qc["modules_to_not_convert"] = kept;
    return;
  }
  json dynamic = json::object();
  for (const std::string& m : kept) {
    std::string escaped;
    for (char c : m) escaped += c == '.' ? std::string("\\.") : std::string(1, c);
    dynamic["-:^" + escaped + "$"] = json::object();
  }
  qc["dynamic"] = dynamic;
  std::map<int64_t, std::set<std::string>> per_block;
  std::set<int64_t> layers;
  for (const auto* list : {&packed, &kept})
    for (const std::string& m : *list)
      if (const auto b = block_module(m)) {
        layers.insert(b->layer);
        if (list == &packed) per_block[b->layer].insert(b->inner);
      }
  const std::set<std::string> first = per_block.empty() ? std::set<std::string>{} : per_block.begin()->second;
  bool uniform = !first.empty() && per_block.size() == layers.size();
  for (const auto& [layer, inner] : per_block) uniform = uniform && inner == first;
  if (uniform) qc["modules_in_block_to_quantize"] = json::array({json(std::vector<std::string>(first.begin(), first.end()))});
}

}  // namespace

std::string hf_quantized_misfit(HfQuantFormat format, int bits, int64_t group_size, int64_t rows, int64_t cols) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return fmt::format("{} bits cannot be written as a HF checkpoint", bits);
  if (rows < 1 || cols < 1) return fmt::format("an empty matrix [{}, {}]", rows, cols);
  const int64_t group = group_size < 0 ? cols : group_size;
  if (format == HfQuantFormat::Awq) {
    if (bits != 4) return fmt::format("AWQ gemm checkpoints hold 4-bit weights only, not {}", bits);
    if (rows % 8 != 0) return fmt::format("AWQ packs 8 output columns per word; {} outputs", rows);
    if (cols % group != 0)
      return fmt::format("AWQ needs whole groups: {} inputs are not a multiple of group size {}", cols, group);
    return "";
  }
  if ((cols * bits) % 32 != 0 || (rows * bits) % 32 != 0)
    return fmt::format("GPTQ {}-bit packing needs input ({}) and output ({}) counts filling whole 32-bit words", bits,
                       cols, rows);
  return "";
}

std::vector<float> HfIntWeight::dequantize() const {
  std::vector<float> out(codes.size());
  const int64_t g = groups();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t p = static_cast<size_t>(r * g + c / group_size);
      out[static_cast<size_t>(r * cols + c)] = scales[p] * static_cast<float>(codes[static_cast<size_t>(r * cols + c)] - zeros[p]);
    }
  return out;
}

const char* hf_quant_format_name(HfQuantFormat format) { return format == HfQuantFormat::Awq ? "awq" : "gptq"; }

void write_hf_quantized(const Model& model, const std::map<std::string, HfIntWeight>& weights, const std::string& dir,
                        const HfQuantizedWriteOptions& options) {
  HfIntWeightSource source;
  for (const auto& [name, w] : weights) {
    HfIntWeight grid = w;
    grid.codes = {};
    grid.scales = {};
    grid.zeros = {};
    source.grids[name] = std::move(grid);
  }
  source.make = [&weights](const std::string& name) { return weights.at(name); };
  write_hf_quantized(model, source, dir, options);
}

void write_hf_quantized(const Model& model, const HfIntWeightSource& source, const std::string& dir,
                        const HfQuantizedWriteOptions& options) {
  const std::map<std::string, HfIntWeight>& grids = source.grids;
  if (grids.empty()) throw_error(ErrorKind::Usage, "{}: no quantized weights to write", dir);
  if (options.float_type != DType::F16 && options.float_type != DType::BF16 && options.float_type != DType::F32)
    throw_error(ErrorKind::Usage, "{}: float tensors must be F16, BF16 or F32", dir);
  const HfIntWeight& first = grids.begin()->second;
  for (const auto& [name, w] : grids) {
    if (!model.has(name)) throw_error(ErrorKind::Internal, "{}: quantized weight '{}' is not in the model", dir, name);
    const Tensor& t = model.tensor(name);
    if (t.rank() != 2 || t.dim(0) != w.rows || t.dim(1) != w.cols)
      throw_error(ErrorKind::Internal, "{}: '{}' is {} but its codes are [{}, {}]", dir, name,
                  shape_to_string(t.shape()), w.rows, w.cols);
    const bool same_groups = w.group_size == first.group_size || (whole_row(w) && whole_row(first));
    if (w.bits != first.bits || !same_groups || w.symmetric != first.symmetric)
      throw_error(ErrorKind::Usage, "{}: '{}' uses another grid than '{}'; one checkpoint holds one grid", dir, name,
                  grids.begin()->first);
    check_grid(name, w, options.format);
  }

  // Entries under the family's names, made when the safetensors writer reaches them. A fused tensor (Phi-3's
  // qkv_proj) stacks its parts' rows, as codes when every part is quantized (they share one grid, checked above)
  // or as floats when none is. A packed linear's tensors are made together the first time one is reached; the
  // others wait in `pending` (the writer takes the int32 ones next, the f16 scales after every int32 entry).
  std::vector<SafetensorsEntry> entries;
  std::vector<std::string> packed_modules, float_modules;  // HF module names of the block linears
  auto pending = std::make_shared<std::map<std::string, Tensor>>();
  const FamilyDefinition& family = family_definition(model.config.family);
  for (const HfStoredTensor& entry : hf_storage_plan(family, model, dir)) {
    size_t quantized = 0;
    for (const std::string& p : entry.parts) quantized += grids.count(p);
    const bool block_linear = names::is_linear_weight(entry.parts.front()) && entry.parts.front() != names::kLmHead;
    if (block_linear) (quantized ? packed_modules : float_modules).push_back(base_of(entry.hf));
    if (quantized == entry.parts.size()) {
      HfIntWeight shape = grids.at(entry.parts.front());
      for (size_t i = 1; i < entry.parts.size(); ++i) shape.rows += grids.at(entry.parts[i]).rows;
      if (entry.parts.size() > 1) check_grid(entry.hf, shape, options.format);
      const std::string base = base_of(entry.hf);
      const int64_t in = shape.cols, out = shape.rows, groups = shape.groups(), b = shape.bits;
      std::vector<std::pair<std::string, std::vector<int64_t>>> planned;
      if (options.format == HfQuantFormat::Awq)
        planned = {{base + ".qweight", {in, out / 8}}, {base + ".qzeros", {groups, out / 8}},
                   {base + ".scales", {groups, out}}};
      else
        planned = {{base + ".qweight", {in * b / 32, out}}, {base + ".qzeros", {groups, out * b / 32}},
                   {base + ".scales", {groups, out}}, {base + ".g_idx", {in}}};
      const std::vector<std::string> parts = entry.parts;
      const std::string hf = entry.hf;
      const HfQuantFormat format = options.format;
      for (const auto& [entry_name, dims] : planned) {
        const DType dtype = entry_name == base + ".scales" ? DType::F16 : DType::I32;
        entries.push_back({entry_name, dims, dtype, [&source, pending, parts, hf, base, format, name = entry_name]() {
          if (!pending->count(name)) {
            HfIntWeight w = source.make(parts.front());
            check_values(parts.front(), w, format);
            for (size_t i = 1; i < parts.size(); ++i) {
              const HfIntWeight more = source.make(parts[i]);
              check_values(parts[i], more, format);
              w.rows += more.rows;
              w.codes.insert(w.codes.end(), more.codes.begin(), more.codes.end());
              w.scales.insert(w.scales.end(), more.scales.begin(), more.scales.end());
              w.zeros.insert(w.zeros.end(), more.zeros.begin(), more.zeros.end());
            }
            if (parts.size() > 1) check_values(hf, w, format);
            for (Tensor& t : format == HfQuantFormat::Awq ? pack_awq(base, w) : pack_gptq(base, w)) {
              const std::string key = t.name();
              pending->emplace(key, std::move(t));
            }
          }
          auto it = pending->find(name);
          Tensor t = std::move(it->second);
          pending->erase(it);
          return t;
        }});
      }
    } else if (quantized == 0) {
      const Tensor& front = model.tensor(entry.parts.front());
      std::vector<int64_t> shape = front.shape();
      shape[0] = 0;
      for (const std::string& p : entry.parts) shape[0] += model.tensor(p).dim(0);
      if (entry.transposed) std::swap(shape[0], shape[1]);
      // A single part in its own layout streams from the model (the writer converts it to float_type row by
      // row); fused or transposed parts are assembled here, one entry at a time.
      if (entry.parts.size() == 1 && !entry.transposed && !traits(front.dtype()).is_quantized) {
        entries.push_back({entry.hf, shape, front.dtype(), [&front, hf = entry.hf]() {
          Tensor t = front;
          t.set_name(hf);
          return t;
        }, options.float_type});
        continue;
      }
      const std::vector<std::string> parts = entry.parts;
      const bool transposed = entry.transposed;
      const std::string hf = entry.hf;
      const DType float_type = options.float_type;
      entries.push_back({entry.hf, shape, float_type, [&model, parts, transposed, hf, float_type]() {
        std::vector<float> values;
        std::vector<int64_t> dims = model.tensor(parts.front()).shape();
        dims[0] = 0;
        for (const std::string& p : parts) {
          const Tensor& t = model.tensor(p);
          const std::vector<float> v = t.to_f32();
          values.insert(values.end(), v.begin(), v.end());
          dims[0] += t.dim(0);
        }
        Tensor t = Tensor::from_f32_as(hf, dims, values, float_type);
        // A family storing float matrices [in, out] (GPT-2's Conv1D) keeps that layout for unquantized ones; packed
        // codes above follow the quantized linear's own [in/pack, out] layout whatever the family.
        return transposed ? hf_transposed_matrix(t, hf) : t;
      }});
    } else {
      throw_error(ErrorKind::Unsupported, "{}: '{}' stores {} fused, but only some of them are quantized", dir,
                  entry.hf, entry.parts.size());
    }
  }

  json config = json::parse(hf_config_json(model.config, model.vocab, options.float_type));
  json qc = quantization_config(first, options);
  if (!float_modules.empty()) add_float_modules(qc, options.format, packed_modules, float_modules);
  config["quantization_config"] = qc;

  const fs::path target = fs::path(dir).lexically_normal();
  model_folder::check_target(target);
  model_folder::Staging staging(target);
  const fs::path temp = staging.path();

  write_file_atomic((temp / "config.json").string(), config.dump(2) + "\n");
  if (options.format == HfQuantFormat::Gptq)
    write_file_atomic((temp / "quantize_config.json").string(), qc.dump(2) + "\n");
  write_safetensors_sharded(temp.string(), entries, {{"format", "pt"}}, 2000000000ull);
  model_folder::write_tokenizer_files(temp, model);
  staging.commit();
  spdlog::info("wrote {} ({} checkpoint, {} quantized linears)", target.string(), hf_quant_format_name(options.format),
               grids.size());
}

bool is_hf_quantized_folder(const std::string& dir) {
  const std::string path = dir + "/config.json";
  if (!file_exists(path)) return false;
  json config;
  try {
    config = parse_json_strict(read_text_file(path), path);
  } catch (const Error&) {
    return false;  // not a quantized folder; the float loader reports what is wrong with the file
  }
  if (!config.is_object() || !config.contains("quantization_config")) return false;
  const json& qc = config["quantization_config"];
  // A quant_method that is not a string is not a quantized folder's: the float loader then refuses the config's
  // quantization_config with its own message.
  if (!qc.is_object() || !qc.contains("quant_method") || !qc["quant_method"].is_string()) return false;
  const std::string& method = qc["quant_method"].get_ref<const std::string&>();
  return method == "gptq" || method == "awq";
}

}  // namespace slmopt
