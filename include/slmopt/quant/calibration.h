// Sequential calibrated quantization of a llama-family model (GPTQ, AWQ, AWQ+GPTQ, and RTN on the same grids for
// comparison), block by block as in the GPTQ recipe:
//
//   hidden = embed(window) for every calibration window
//   for each block k:
//     run every window through block k, collecting the input statistics (XᵀX, mean |x|) of its linears
//       (true_sequential: in four stages, q/k/v → o → gate/up → down, each stage seeing the already quantized
//        linears of the stages before it)
//     quantize the block's linears, store them in the Model, reload the block into the runner
//     hidden = block k (quantized) applied to hidden         → the next block's calibration input
//
// Memory: one block's activations for all windows plus the statistics of one block. Deterministic: windows run
// in order for statistics, every parallel step is tiled independently of the thread count.
//
// Results in the Model: integer grids replace each linear by its dequantized F32 weights (so eval and the forward
// pass run it), and the codes are returned for the HF GPTQ/AWQ writers (io/hf_gptq.h); GGUF targets replace it by
// a tensor of the block type (the GGUF writer copies its blocks). AWQ also rewrites the norms / v and up rows it
// folds scales into (F32).
//
// Typical use (the quantize command):
//   auto windows = sample_calibration_windows(tokenize_file(tokenizer, calib), 128, seqlen, seed, vocab.bos_id);
//   HF output:   r = quantize_calibrated(model, windows, uniform_int_grid({4, 128, false}), options);
//                write_hf_quantized(model, r.hf_weights(), dir, {...});            (io/hf_gptq.h)
//   GGUF output: r = quantize_calibrated(model, windows, gguf_preset_targets(model, selection), options);
//                write_gguf(model, path, ...): the calibrated linears already hold their target dtype and are
//                copied as they are; the embedding and head are encoded by the writer's callback as for RTN.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/quant/awq.h"
#include "slmopt/quant/gptq.h"
#include "slmopt/quant/int_grid.h"
#include "slmopt/quant/type_selection.h"

namespace slmopt {

enum class CalibrationMethod { Rtn, Gptq, Awq, AwqGptq };
const char* calibration_method_name(CalibrationMethod method);            // "rtn", "gptq", "awq", "awq+gptq"
std::optional<CalibrationMethod> calibration_method_from_name(const std::string& name);

// What one linear is rounded onto: an integer grid (HF GPTQ/AWQ checkpoints) or a GGUF block type (gguf_grid.h:
// the scales of the type's encoder, packed into stock blocks).
using QuantTarget = std::variant<IntGridSpec, DType>;
std::string describe_target(const QuantTarget& target);  // "int4 g128 asym", "q4_k"

// Chooses the target of one block linear (layer, canonical weight name); nullopt leaves it as it is.
using TargetChooser = std::function<std::optional<QuantTarget>(int64_t layer, const std::string& weight_name)>;
// Every block linear on one grid / one GGUF type.
TargetChooser uniform_int_grid(const IntGridSpec& spec);
TargetChooser uniform_gguf_type(DType dtype);
// The per-tensor types of a GGUF preset (type_selection.h: Q4_K_M's Q6_K attn_v/ffn_down layers, fallbacks for
// rows that are not whole blocks, overrides). Linears the preset leaves in a float type stay as they are; the
// output head and embedding are not block linears: the GGUF writer quantizes them as usual.
TargetChooser gguf_preset_targets(const Model& model, const TypeSelectionOptions& options);

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::Gptq;
  GptqOptions gptq;
  AwqOptions awq;
  bool true_sequential = true;  // GPTQ only (AWQ searches on the float block's inputs, as AutoAWQ)
  // GPTQ onto Q4_0/Q5_0/Q8_0/IQ4_NL: rounds of "re-fit the block scales to the chosen codes (GgufWeightGrid::
  // refit_scales), then GPTQ again onto the new scales", each kept only while it lowers the linear's output error.
  int gptq_refits = 0;
  // GPTQ: GPTAQ's asymmetric calibration with this α (gptq.h: gptaq_correction; 0 = off, 0.25 published): each
  // linear is fitted to the float model's output on the float model's inputs, not to its own output on the
  // quantized model's inputs. Runs the float blocks alongside (twice the block inputs in memory, the float
  // forward pass once more per stage) and needs true_sequential.
  double gptq_asym = 0;
  bool progress = true;         // a bar with ETA per block, drawn only when stderr is a terminal
  // false: once a block's outputs for the next block are computed, its integer-grid linears go back to the input
  // tensors in the Model (placeholders of the right shape; the result's int_weights are the quantized weights), so
  // calibration holds 1 byte of codes per weight instead of 4 of F32 — for a writer that takes the codes
  // (write_hf_quantized). GGUF targets and everything else in the Model are as with true.
  bool keep_dequantized = true;
  // GPTQ also rounds the output head (on the final norm's outputs, like any linear) and the token embedding (a
  // lookup without inputs: its Hessian comes from the linears that read the residual stream,
  // quant/embedding_hessian.h) onto the chooser's targets for names::kLmHead / kEmbedTokens. GGUF targets of
  // untied models only: a tied embedding is also the head, and HF GPTQ/AWQ checkpoints keep both in float.
  bool embedding_and_head = false;
};

struct LinearReport {
  std::string name;
  std::string grid;          // describe_target: "int4 g128 asym", "q4_k"
  double error = 0;          // ||XWᵀ − XŴᵀ|| / ||XWᵀ|| on the calibration inputs of this linear
  double rtn_error = 0;      // the same for round-to-nearest on the same grid
  double awq_alpha = -2;     // AWQ: the chosen α (−1: no scaling helped or possible); −2 when not AWQ
  std::string awq_note;      // AWQ: why the input was left unscaled when the block has nothing to fold 1/s into
  GptqStats gptq;            // GPTQ only
  int gptq_refits = 0;       // GPTQ: scale re-fitting rounds kept (CalibrationOptions::gptq_refits)
  double weight_error = 0;   // ||W − Ŵ||_F / ||W||_F against the weight before calibration (AWQ: before folding)
};

struct CalibrationReport {
  std::vector<LinearReport> linears;
  int64_t windows = 0, tokens = 0;
  double calibration_seconds = 0;  // forward passes and statistics
  double hessian_seconds = 0;      // the statistics' part of calibration_seconds (XᵀX products)
  double solver_seconds = 0;       // GPTQ / AWQ searches / RTN
  double solver_flops = 0;         // GPTQ factorisations and sweeps
  double gptq_seconds = 0;         // the part of solver_seconds spent in GPTQ's factorisations and sweeps
  double factor_seconds = 0;       // the factorisations' part of gptq_seconds (one per distinct input)
  // Most bytes of activations alive at once (every window's block input + one chunk of captured linear
  // inputs): one block's worth, whatever the number of blocks.
  int64_t peak_activation_bytes = 0;
};

struct CalibrationResult {
  CalibrationReport report;
  std::map<std::string, GridQuantizedWeight> int_weights;  // canonical weight name → codes (for io/hf_gptq.h)

  // int_weights in the form write_hf_quantized takes.
  std::map<std::string, HfIntWeight> hf_weights() const;
  // int_weights in the form the ONNX exporter takes (4 or 8 bits).
  IntQuantizedWeights onnx_weights() const;
};

// Quantizes the block linears of `model` in place. windows: token windows (text/dataset.h's
// sample_calibration_windows). Every decoder description runs (AWQ folds where awq.h says it can). Throws
// Error(Usage) for an empty window list or a grid that does not fit a weight.
CalibrationResult quantize_calibrated(Model& model, const std::vector<std::vector<int32_t>>& windows,
                                      const TargetChooser& choose, const CalibrationOptions& options);

// Round-to-nearest onto the chooser's integer grids without calibration text: rounding needs no activations, so
// `quantize --type int4` (method rtn) writes the same codes as quantize_calibrated with method Rtn. The report's
// errors are relative weight errors ||W − Ŵ|| / ||W|| (there are no inputs to weigh them by); windows and tokens
// are 0. Error(Usage) for a GGUF target (presets round in the GGUF writer) or a grid that does not fit a weight.
CalibrationResult quantize_uncalibrated_rtn(Model& model, const TargetChooser& choose);

// The same in two steps, for a writer that rounds each linear when it reaches it (memory: one linear at a time):
// the block linears the chooser targets, in block order, with their grids checked against the shapes (the same
// errors as above), and the rounding of one of them with its report (error = rtn_error = weight_error).
struct RtnTarget {
  std::string name;
  IntGridSpec spec;
};
std::vector<RtnTarget> uncalibrated_rtn_targets(const Model& model, const TargetChooser& choose);
GridQuantizedWeight quantize_rtn_linear(const Tensor& weight, const IntGridSpec& spec, LinearReport& report);

}  // namespace slmopt
