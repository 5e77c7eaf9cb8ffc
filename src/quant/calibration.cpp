// Sequential calibration driver: statistics per block through the forward pass observer, then GPTQ / AWQ /
// RTN per linear, then the quantized block's outputs feed the next block. See calibration.h.
#include "slmopt/quant/calibration.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <memory>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/core/parallel.h"
#include "slmopt/core/progress.h"
#include "slmopt/core/huge_pages.h"
#include "slmopt/exec/gemm.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/embedding_hessian.h"
#include "slmopt/quant/gguf_grid.h"
#include "slmopt/quant/tensor_quantizer.h"

namespace slmopt {

const char* calibration_method_name(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::Rtn: return "rtn";
    case CalibrationMethod::Gptq: return "gptq";
    case CalibrationMethod::Awq: return "awq";
    case CalibrationMethod::AwqGptq: return "awq+gptq";
  }
  return "?";
}

std::optional<CalibrationMethod> calibration_method_from_name(const std::string& name) {
  for (auto m : {CalibrationMethod::Rtn, CalibrationMethod::Gptq, CalibrationMethod::Awq, CalibrationMethod::AwqGptq})
    if (name == calibration_method_name(m)) return m;
  return std::nullopt;
}

std::map<std::string, HfIntWeight> CalibrationResult::hf_weights() const {
  std::map<std::string, HfIntWeight> out;
  for (const auto& [name, w] : int_weights) out[name] = w.to_hf();
  return out;
}

IntQuantizedWeights CalibrationResult::onnx_weights() const {
  IntQuantizedWeights out;
  for (const auto& [name, w] : int_weights) out[name] = w.to_int_weight();
  return out;
}

std::string describe_target(const QuantTarget& target) {
  if (const auto* spec = std::get_if<IntGridSpec>(&target)) return spec->describe();
  return std::string(dtype_name(std::get<DType>(target)));
}

TargetChooser uniform_int_grid(const IntGridSpec& spec) {
  return [spec](int64_t, const std::string&) { return std::optional<QuantTarget>(spec); };
}

TargetChooser uniform_gguf_type(DType dtype) {
  return [dtype](int64_t, const std::string&) { return std::optional<QuantTarget>(dtype); };
}

TargetChooser gguf_preset_targets(const Model& model, const TypeSelectionOptions& options) {
  std::vector<TensorDesc> descs;
  for (const Tensor* t : model.ordered_tensors()) descs.push_back({t->name(), t->shape(), t->dtype()});
  std::map<std::string, DType> chosen;
  for (const TypeChoice& c : select_tensor_types(model.config, descs, options))
    if (gguf_grid_supported(c.dtype)) chosen[c.name] = c.dtype;
  return [chosen](int64_t, const std::string& name) -> std::optional<QuantTarget> {
    auto it = chosen.find(name);
    if (it == chosen.end()) return std::nullopt;
    return it->second;
  };
}

namespace {

using Clock = std::chrono::steady_clock;
// The report's relative output errors of a linear with more rows than twice this come from this many evenly spaced
// rows: each exact error is rows·cols² multiply-adds, and the RTN error, the method's error and their common
// denominator cost three times the GPTQ sweep (446 of 591 solver seconds on the 1B shape). The estimate's spread
// over 256 rows is well below the differences the report is read for (GPTQ vs RTN, layer vs layer).
constexpr int64_t kReportRows = 256;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The four distinct inputs of a llama block's linears.
enum Input { kAttnIn = 0, kAttnOut = 1, kMlpIn = 2, kMlpMid = 3 };

struct Linear {
  std::string name;
  Input input;
};

// A block's linears by input; MLPs without a gate (GELU: GPT-2, Phi-2) have no gate_proj.
std::vector<Linear> block_linears(int64_t l, bool gated = true) {
  std::vector<Linear> out = {{names::q_proj(l), kAttnIn}, {names::k_proj(l), kAttnIn}, {names::v_proj(l), kAttnIn},
                             {names::o_proj(l), kAttnOut}};
  if (gated) out.push_back({names::gate_proj(l), kMlpIn});
  out.push_back({names::up_proj(l), kMlpIn});
  out.push_back({names::down_proj(l), kMlpMid});
  return out;
}

// Copies the inputs in `wanted` of one forward call (q, k and v see the same input: only q's call is kept).
class InputCapture : public LinearObserver {
 public:
  InputCapture(int64_t layer, const std::vector<Input>& wanted) {
    // up_proj sees the MLP input whether or not a gate_proj sees it too.
    const std::array<std::string, 4> first = {names::q_proj(layer), names::o_proj(layer), names::up_proj(layer),
                                              names::down_proj(layer)};
    for (Input i : wanted) representative_[first[static_cast<size_t>(i)]] = i;
  }
  // Ends the block's forward call once every wanted input is captured: the rest of the block is not needed.
  void on_linear(const LinearActivation& a) override {
    auto it = representative_.find(a.weight);
    if (it == representative_.end()) return;
    inputs[static_cast<size_t>(it->second)] = a.input;
    if (++captured_ == representative_.size()) throw ForwardStop{};
  }
  std::array<std::optional<RowMatrix>, 4> inputs;

 private:
  std::map<std::string, Input> representative_;
  size_t captured_ = 0;
};

// The grid of one weight. importance (cols entries) guides a GGUF encoder's scale search.
std::unique_ptr<WeightGrid> make_grid(const QuantTarget& target, std::span<const float> w, int64_t rows, int64_t cols,
                                      const std::vector<float>& importance, const std::string& name) {
  if (const auto* spec = std::get_if<IntGridSpec>(&target)) {
    spec->validate(cols, name);
    return std::make_unique<IntWeightGrid>(rows, cols, *spec);
  }
  return std::make_unique<GgufWeightGrid>(w, rows, cols, std::get<DType>(target), importance.data(), name);
}

std::vector<float> diagonal(const Eigen::MatrixXd& h) {
  std::vector<float> d(static_cast<size_t>(h.cols()));
  for (int64_t i = 0; i < h.cols(); ++i) d[static_cast<size_t>(i)] = static_cast<float>(std::max(0.0, h(i, i)));
  return d;
}

// diag(1/s)·H·diag(1/s): the statistics of inputs divided by s.
Eigen::MatrixXd scale_gram(const Eigen::MatrixXd& h, const Eigen::VectorXd& s) {
  const Eigen::VectorXd inv = s.cwiseInverse();
  return inv.asDiagonal() * h * inv.asDiagonal();
}

// AWQ's clipping search: per (row, group), the range ratio 1 − i/grid (i < steps) with the smallest output error
// of the group's columns on the calibration inputs.
std::vector<double> search_clip(std::span<const float> w, int64_t rows, int64_t cols, const IntGridSpec& spec,
                                const Eigen::MatrixXd& gram, const AwqOptions& options) {
  const int64_t gc = spec.group_columns(cols), groups = spec.groups(cols);
  std::vector<double> clip(static_cast<size_t>(rows * groups), 1.0);
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    std::vector<double> values(static_cast<size_t>(gc));
    Eigen::VectorXd d(gc);
    for (size_t rr = begin; rr < end; ++rr) {
      const int64_t r = static_cast<int64_t>(rr);
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t n = std::min(gc, cols - g * gc);  // the last group may be shorter
        for (int64_t c = 0; c < n; ++c) values[static_cast<size_t>(c)] = w[static_cast<size_t>(r * cols + g * gc + c)];
        const std::span<const double> group(values.data(), static_cast<size_t>(n));
        const auto block = gram.block(g * gc, g * gc, n, n);
        double best = std::numeric_limits<double>::infinity();
        for (int i = 0; i < options.clip_steps; ++i) {
          const double ratio = 1.0 - static_cast<double>(i) / options.clip_grid;
          const IntGroupParams p = fit_int_group(spec, group, ratio);
          for (int64_t c = 0; c < n; ++c)
            d[c] = values[static_cast<size_t>(c)] -
                   p.dequantize(p.quantize(values[static_cast<size_t>(c)], spec.max_code()));
          const double e = d.head(n).dot(block * d.head(n));
          if (e < best) best = e, clip[static_cast<size_t>(r * groups + g)] = ratio;
        }
      }
    }
  });
  return clip;
}

// GPTAQ's cross statistic of one input: Σ (x − x̃)ᵀx̃ over every calibration row, x from the float model and x̃
// from the quantized one, as F32 products per window (exec/gemm.h, fixed order) added to a double total.
class CrossStatistics {
 public:
  explicit CrossStatistics(int64_t columns) : sum_(Eigen::MatrixXd::Zero(columns, columns)) {}
  void add(const RowMatrix& float_x, const RowMatrix& quant_x) {
    const int64_t n = sum_.cols();
    if (float_x.cols() != n || quant_x.cols() != n || float_x.rows() != quant_x.rows())
      throw_error(ErrorKind::Internal, "GPTAQ: float and quantized inputs disagree in shape");
    const RowMatrix dx = float_x - quant_x;
    HugeVector<float> prod(static_cast<size_t>(n * n), 0.0f);
    gemm_accumulate_parallel({n, n, dx.rows(), dx.data(), 1, n, quant_x.data(), n, prod.data(), n});
    add_product_to_total(sum_, prod.data(), /*upper_only=*/false);
    rows_ += dx.rows();
  }
  // 2·ΔXᵀX̃ / rows: the scale of InputStatistics::hessian.
  Eigen::MatrixXd scaled() const { return rows_ == 0 ? sum_ : Eigen::MatrixXd(sum_ * (2.0 / static_cast<double>(rows_))); }

 private:
  Eigen::MatrixXd sum_;
  int64_t rows_ = 0;
};

class Calibrator {
 public:
  Calibrator(Model& model, const TargetChooser& choose, const CalibrationOptions& options)
      : model_(model), input_(model), choose_(choose), options_(options), runner_(model) {
    if (options_.gptq_asym < 0) throw_error(ErrorKind::Usage, "GPTAQ: --gptq-asym {} must not be negative", options_.gptq_asym);
    if (options_.gptq_asym > 0 && options_.method != CalibrationMethod::Gptq)
      throw_error(ErrorKind::Usage, "GPTAQ (--gptq-asym) applies to --method gptq, not {}",
                  calibration_method_name(options_.method));
    if (asym()) {
      if (!options_.true_sequential)
        throw_error(ErrorKind::Usage, "GPTAQ (--gptq-asym) needs true-sequential calibration");
      float_runner_.emplace(model);  // the float weights, before any block is quantized
    }
  }

  CalibrationResult run(const std::vector<std::vector<int32_t>>& windows) {
    if (windows.empty()) throw_error(ErrorKind::Usage, "calibration needs at least one window");
    auto t = Clock::now();
    std::vector<RowMatrix> hidden(windows.size());
    parallel_for(windows.size(), [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) hidden[i] = runner_.embed(windows[i]);
    });
    if (asym()) float_hidden_ = hidden;
    result_.report.calibration_seconds += since(t);
    result_.report.windows = static_cast<int64_t>(windows.size());
    for (const auto& w : windows) result_.report.tokens += static_cast<int64_t>(w.size());

    const int64_t layers = runner_.layer_count();
    std::optional<EmbeddingHessian> embedding;
    if (embedding_gptq()) embedding.emplace(model_.config.hidden_size);
    Progress progress(fmt::format("{} calibration", calibration_method_name(options_.method)),
                      static_cast<uint64_t>(layers), options_.progress);
    for (int64_t l = 0; l < layers; ++l) {
      progress.set_label(fmt::format("{} block {}/{}", calibration_method_name(options_.method), l + 1, layers));
      const bool awq = options_.method == CalibrationMethod::Awq || options_.method == CalibrationMethod::AwqGptq;
      if (embedding) add_block_readers(*embedding, l, hidden);  // the float readers, before the block is rounded
      if (awq) {
        run_awq_block(l, hidden);
      } else {
        const std::vector<std::vector<Input>> stages =
            options_.true_sequential ? std::vector<std::vector<Input>>{{kAttnIn}, {kAttnOut}, {kMlpIn}, {kMlpMid}}
                                     : std::vector<std::vector<Input>>{{kAttnIn, kAttnOut, kMlpIn, kMlpMid}};
        for (const auto& stage : stages) {
          std::array<std::optional<CrossStatistics>, 4> cross;
          const auto stats = collect(l, stage, hidden, asym() ? &cross : nullptr);
          const auto s = Clock::now();
          // Linears sharing an input share H, its factor and GPTAQ's correction.
          std::array<std::optional<Eigen::MatrixXd>, 4> hessians;
          std::array<std::optional<GptqFactor>, 4> factors;
          std::array<std::optional<GptaqCorrection>, 4> corrections;
          for (const Linear& lin : block_linears(l, model_.config.has_gate()))
            if (std::find(stage.begin(), stage.end(), lin.input) != stage.end()) {
              const size_t in = static_cast<size_t>(lin.input);
              if (!hessians[in]) hessians[in] = stats[in]->hessian();
              quantize_linear(l, lin.name, *hessians[in], factors[in], gptq_options(l, lin.input),
                              cross[in] ? &*cross[in] : nullptr, corrections[in]);
            }
          result_.report.solver_seconds += since(s);
          runner_.reload_layer(model_, l);
        }
      }
      t = Clock::now();
      runner_.run_block_windows(l, hidden);
      if (asym()) float_runner_->run_block_windows(l, float_hidden_);
      result_.report.calibration_seconds += since(t);
      finish_block(l);
      progress.advance();
    }
    progress.finish();
    if (embedding) quantize_embedding_and_head(*embedding, hidden);
    return std::move(result_);
  }

 private:
  // Runs block l on every window (windows in parallel, a chunk at a time, so memory stays at one chunk of
  // captured inputs) and adds the captured inputs to the statistics in window order.
  // cross (GPTAQ): the float block also runs on float_hidden_ and the pairs of inputs feed CrossStatistics.
  std::array<std::optional<InputStatistics>, 4> collect(int64_t l, const std::vector<Input>& wanted,
                                                        const std::vector<RowMatrix>& hidden,
                                                        std::array<std::optional<CrossStatistics>, 4>* cross = nullptr) {
    constexpr size_t kChunk = 16;
    const auto t = Clock::now();
    std::array<std::optional<InputStatistics>, 4> stats;
    for (size_t c0 = 0; c0 < hidden.size(); c0 += kChunk) {
      const size_t c1 = std::min(hidden.size(), c0 + kChunk);
      std::vector<InputCapture> captures(c1 - c0, InputCapture(l, wanted));
      std::vector<InputCapture> float_captures(cross ? c1 - c0 : 0, InputCapture(l, wanted));
      parallel_for(c1 - c0, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) {
          RowMatrix h = hidden[c0 + i];  // scratch: only the captured inputs are kept
          RunOptions run;
          run.observer = &captures[i];
          try {
            runner_.run_block(l, h, {}, run);
          } catch (const ForwardStop&) {
          }
          if (cross) {
            RowMatrix fh = float_hidden_[c0 + i];  // scratch, as h
            RunOptions frun;
            frun.observer = &float_captures[i];
            try {
              float_runner_->run_block(l, fh, {}, frun);
            } catch (const ForwardStop&) {
            }
          }
        }
      });
      // Live activations now: the block inputs of every window plus this chunk's captured linear inputs.
      size_t captured = 0;
      for (const InputCapture& capture : captures)
        for (const auto& x : capture.inputs)
          if (x) captured += static_cast<size_t>(x->size()) * sizeof(float);
      for (const InputCapture& capture : float_captures)
        for (const auto& x : capture.inputs)
          if (x) captured += static_cast<size_t>(x->size()) * sizeof(float);
      size_t copies = (c1 - c0) * static_cast<size_t>(hidden[c0].size()) * sizeof(float);  // the h below
      if (cross) copies *= 2;
      note_activations(hidden_bytes(hidden) + hidden_bytes(float_hidden_) + copies + captured);
      const auto th = Clock::now();
      for (size_t i = 0; i < captures.size(); ++i)
        for (Input in : wanted) {
          auto& x = captures[i].inputs[static_cast<size_t>(in)];
          if (!x) throw_error(ErrorKind::Internal, "calibration: block {} input {} was never observed", l, static_cast<int>(in));
          auto& s = stats[static_cast<size_t>(in)];
          if (!s) s.emplace(x->cols());
          s->add(*x);
          if (cross) {
            auto& fx = float_captures[i].inputs[static_cast<size_t>(in)];
            auto& cs = (*cross)[static_cast<size_t>(in)];
            if (!cs) cs.emplace(x->cols());
            cs->add(*fx, *x);
            fx.reset();
          }
          x.reset();
        }
      result_.report.hessian_seconds += since(th);
    }
    result_.report.calibration_seconds += since(t);
    return stats;
  }

  // GPTQ's options for the linears of block l that read `input` (they share one factor): act-order keeps groups
  // of 8 columns whole when any of them rounds onto a lattice i-quant (8 columns per codebook point).
  GptqOptions gptq_options(int64_t l, Input input) const {
    GptqOptions o = options_.gptq;
    for (const Linear& lin : block_linears(l, model_.config.has_gate()))
      if (lin.input == input)
        if (const auto target = choose_(l, lin.name); target && std::holds_alternative<DType>(*target) &&
                                                       gguf_grid_joint_columns(std::get<DType>(*target)) > 1)
          o.order_group = gguf_grid_joint_columns(std::get<DType>(*target));
    return o;
  }

  // GPTQ or RTN of one linear on its (unscaled) inputs.
  // cross (GPTAQ): the input's cross statistic; correction caches its gptaq_correction for linears sharing it.
  void quantize_linear(int64_t l, const std::string& name, const Eigen::MatrixXd& h,
                       std::optional<GptqFactor>& factor, const GptqOptions& gptq, const CrossStatistics* cross,
                       std::optional<GptaqCorrection>& correction) {
    const std::optional<QuantTarget> target = choose_(l, name);
    if (!target) return;
    const Tensor& t = model_.tensor(name);
    const std::vector<float> original = t.to_f32();
    const std::vector<float> importance = diagonal(h);
    LinearReport rep{name, describe_target(*target)};
    std::unique_ptr<WeightGrid> rtn_grid = make_grid(*target, original, t.rows(), t.cols(), importance, name);
    std::vector<float> rtn = rtn_quantize(original, *rtn_grid);
    // Re-fitting compares errors, so it needs them exact; the RTN error beside them is then exact too, so that the
    // report's two columns are the same kind of figure.
    const int64_t report_rows = options_.gptq_refits > 0 ? 0 : kReportRows;
    rep.rtn_error = relative_output_error(original, rtn, t.rows(), h, report_rows);
    if (options_.method == CalibrationMethod::Rtn) {
      rep.error = rep.rtn_error;
      store(name, t.shape(), *rtn_grid, std::move(rep));
      return;
    }
    if (!factor) {
      factor = gptq_factor(h, gptq, name);
      rep.gptq.factor_seconds = factor->seconds;
      result_.report.solver_flops += factor->flops;
      result_.report.gptq_seconds += factor->seconds;
      result_.report.factor_seconds += factor->seconds;
    }
    // GPTAQ: the sweep's target absorbs the float/quantized input asymmetry; errors below are against it.
    // The head takes the full correction: GPTAQ's α < 1 keeps a block's over-correction from compounding through
    // the blocks after it, and nothing follows the head (Q4_0 of llama-5m-kjv, three calibration seeds: mean KL on
    // 20 kjv-eval windows 1.1 % lower on average with α = 1 than with 0.25 for the head).
    const double alpha = l == kOutputLayer ? 1.0 : options_.gptq_asym;
    if (cross && !correction) correction = gptaq_correction(*factor, cross->scaled(), alpha);
    const std::vector<float> w = correction ? gptaq_target(original, t.rows(), *factor, *correction) : original;
    // A fixed grid (GGUF block scales, built by the type's encoder: the costly part) made from the same weights is
    // the RTN grid itself: rounding only wrote codes, which the sweep overwrites.
    std::unique_ptr<WeightGrid> grid = !correction && rtn_grid->fixed()
                                           ? std::move(rtn_grid)
                                           : make_grid(*target, w, t.rows(), t.cols(), importance, name);
    const double factor_seconds = rep.gptq.factor_seconds;
    std::vector<float> values = gptq_quantize(w, *factor, *grid, gptq, &rep.gptq, name);
    rep.gptq.factor_seconds = factor_seconds;
    rep.gptq.seconds += factor_seconds;
    result_.report.solver_flops += rep.gptq.flops;
    result_.report.gptq_seconds += rep.gptq.seconds - factor_seconds;
    rep.error = relative_output_error(w, values, t.rows(), h, report_rows);
    if (auto* g = dynamic_cast<GgufWeightGrid*>(grid.get()); g && options_.gptq_refits > 0)
      refit_rounds(*g, w, t.rows(), h, *factor, gptq, name, rep);
    store(name, t.shape(), *grid, std::move(rep));
  }

  // options_.gptq_refits rounds of: block scales re-fitted to GPTQ's codes, then GPTQ onto the new scales; the
  // better of the two states after each step is kept, and the rounds stop when one no longer helps.
  void refit_rounds(GgufWeightGrid& g, std::span<const float> w, int64_t rows, const Eigen::MatrixXd& h,
                    const GptqFactor& factor, const GptqOptions& gptq, const std::string& name, LinearReport& rep) {
    const auto start = Clock::now();
    for (int round = 0; round < options_.gptq_refits; ++round) {
      GgufWeightGrid::Snapshot before = g.snapshot();
      if (!g.refit_scales(w, h)) break;
      double best = relative_output_error(w, g.values(), rows, h);
      GgufWeightGrid::Snapshot refitted = g.snapshot();
      const std::vector<float> again = gptq_quantize(w, factor, g, gptq, nullptr, name);
      const double e_again = relative_output_error(w, again, rows, h);
      if (e_again < best) best = e_again;
      else g.restore(std::move(refitted));
      if (!(best < rep.error)) {
        g.restore(std::move(before));
        break;
      }
      rep.error = best;
      ++rep.gptq_refits;
    }
    result_.report.gptq_seconds += since(start);
  }

  // The grid holds the chosen codes: integer grids become F32 weights plus codes, GGUF grids their blocks.
  void store(const std::string& name, const std::vector<int64_t>& shape, WeightGrid& grid, LinearReport rep) {
    if (auto* g = dynamic_cast<IntWeightGrid*>(&grid)) {
      GridQuantizedWeight codes = g->take();
      model_.set(Tensor::from_f32(name, shape, codes.dequantize()));
      result_.int_weights[name] = std::move(codes);
    } else {
      model_.set(static_cast<GgufWeightGrid&>(grid).pack(name));
    }
    rep.weight_error = relative_error(input_.tensor(name), model_.tensor(name), nullptr);
    result_.report.linears.push_back(std::move(rep));
  }

  // Block l's outputs are computed: its weights are not read again. Without keep_dequantized the integer-grid
  // linears' F32 copies are dropped (the runner's too); the input's mapped pages go back either way.
  void finish_block(int64_t l) {
    bool placeholders = false;
    for (const Linear& lin : block_linears(l, model_.config.has_gate())) {
      if (!options_.keep_dequantized && result_.int_weights.count(lin.name)) {
        model_.set(input_.tensor(lin.name));
        placeholders = true;
      }
      const Tensor& in = input_.tensor(lin.name);
      release_mapped_pages(in.data(), in.nbytes());
    }
    if (placeholders) runner_.reload_layer(model_, l);
  }

  // AWQ: statistics of the float block, scale search per input group, folding, clip search, rounding.
  void run_awq_block(int64_t l, const std::vector<RowMatrix>& hidden) {
    const auto stats = collect(l, {kAttnIn, kAttnOut, kMlpIn, kMlpMid}, hidden);
    const auto started = Clock::now();
    const Config& c = model_.config;
    std::vector<Linear> linears = block_linears(l, c.has_gate());
    // A parallel block (Phi-2) feeds attention and MLP from one norm: gate/up share q/k/v's input and scale.
    if (c.residual_layout == ResidualLayout::Parallel)
      for (Linear& lin : linears)
        if (lin.input == kMlpIn) lin.input = kAttnIn;
    const std::array<std::string, 4> unfoldable = awq_unfoldable_inputs(l);
    std::map<std::string, std::optional<QuantTarget>> specs;
    std::map<std::string, std::vector<float>> original;
    for (const Linear& lin : linears) {
      specs[lin.name] = choose_(l, lin.name);
      original[lin.name] = model_.tensor(lin.name).to_f32();
    }

    // Scale search per input group; a group with an unquantized member keeps s = 1.
    std::array<Eigen::VectorXd, 4> input_scale;
    std::array<double, 4> alpha = {-1, -1, -1, -1};
    const int64_t heads = c.heads(l), kv = c.kv_heads(l), hd = c.head_dim;
    std::vector<int64_t> tie(static_cast<size_t>(heads * hd));
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t d = 0; d < hd; ++d) tie[static_cast<size_t>(h * hd + d)] = (h / (heads / kv)) * hd + d;
    AwqLayerScales scales;
    for (int in = 0; in < 4; ++in) {
      AwqGroupInput group;
      std::vector<const Linear*> members;
      bool all = true;
      for (const Linear& lin : linears)
        if (lin.input == in) {
          members.push_back(&lin);
          all = all && specs[lin.name].has_value();
        }
      if (members.empty() || !all) continue;
      if (!unfoldable[static_cast<size_t>(in)].empty()) {
        for (const Linear* m : members) awq_notes_[m->name] = unfoldable[static_cast<size_t>(in)];
        continue;
      }
      for (const Linear* m : members) {
        group.weights.push_back(original[m->name]);
        group.rows.push_back(model_.tensor(m->name).rows());
      }
      const InputStatistics& st = *stats[static_cast<size_t>(in)];
      const std::vector<float> importance = diagonal(st.hessian());
      {
        const QuantTarget& t0 = *specs[members[0]->name];
        const auto* spec = std::get_if<IntGridSpec>(&t0);
        group.group_columns = spec ? spec->group_columns(st.columns()) : traits(std::get<DType>(t0)).block_size;
      }
      const GroupQuantizer rtn = [&](size_t i, std::span<const float> w) {
        const int64_t rows = group.rows[i], cols = static_cast<int64_t>(w.size()) / rows;
        std::unique_ptr<WeightGrid> g = make_grid(*specs[members[i]->name], w, rows, cols, importance, members[i]->name);
        return rtn_quantize(w, *g);
      };
      const bool tied = in == kAttnOut;
      Eigen::VectorXd s = awq_search_scales(group, *stats[static_cast<size_t>(in)], rtn, options_.awq,
                                            tied ? &tie : nullptr, kv * hd, &alpha[static_cast<size_t>(in)]);
      if (in == kAttnIn) scales.qkv = s;
      if (in == kAttnOut) scales.v_out = s;
      if (in == kMlpIn) scales.gate_up = s;
      if (in == kMlpMid) scales.down = s;
      input_scale[static_cast<size_t>(in)] = tied ? expand_kv_scales(s, heads, kv, hd) : s;
    }
    fold_awq_scales(model_, l, scales);

    for (const Linear& lin : linears) {
      const auto& target = specs[lin.name];
      if (!target) continue;
      const Tensor& t = model_.tensor(lin.name);
      const InputStatistics& st = *stats[static_cast<size_t>(lin.input)];
      const Eigen::MatrixXd h = st.hessian();
      const Eigen::VectorXd& s = input_scale[static_cast<size_t>(lin.input)];
      const Eigen::MatrixXd hs = s.size() ? scale_gram(h, s) : h;
      const std::vector<float> w = t.to_f32();  // scaled
      const std::vector<float> importance = diagonal(hs);
      LinearReport rep{lin.name, describe_target(*target)};
      rep.awq_alpha = alpha[static_cast<size_t>(lin.input)];
      if (auto note = awq_notes_.find(lin.name); note != awq_notes_.end()) rep.awq_note = note->second;
      {
        std::unique_ptr<WeightGrid> g = make_grid(*target, original[lin.name], t.rows(), t.cols(), diagonal(h), lin.name);
        rep.rtn_error =
            relative_output_error(original[lin.name], rtn_quantize(original[lin.name], *g), t.rows(), h, kReportRows);
      }
      std::unique_ptr<WeightGrid> grid = make_grid(*target, w, t.rows(), t.cols(), importance, lin.name);
      std::vector<float> values;
      if (options_.method == CalibrationMethod::AwqGptq) {
        GptqOptions gptq = options_.gptq;
        gptq.order_group = grid->joint_columns();
        values = gptq_quantize(w, hs, *grid, gptq, &rep.gptq, lin.name);
        result_.report.solver_flops += rep.gptq.flops;
        result_.report.gptq_seconds += rep.gptq.seconds;
        result_.report.factor_seconds += rep.gptq.factor_seconds;
      } else {
        const auto* spec = std::get_if<IntGridSpec>(&*target);
        // Clipping applies to integer grids; a GGUF encoder runs its own scale search.
        const bool clip = spec && options_.awq.clip_search && lin.name != names::q_proj(l) && lin.name != names::k_proj(l);
        if (clip)
          static_cast<IntWeightGrid&>(*grid).set_clip(search_clip(w, t.rows(), t.cols(), *spec, hs, options_.awq));
        values = rtn_quantize(w, *grid);
      }
      // The error in the scaled space equals the error of the folded model against the original (see awq.h).
      rep.error = relative_output_error(w, values, t.rows(), hs, kReportRows);
      store(lin.name, t.shape(), *grid, std::move(rep));
    }
    result_.report.solver_seconds += since(started);
    runner_.reload_layer(model_, l);
  }

  static size_t hidden_bytes(const std::vector<RowMatrix>& hidden) {
    size_t n = 0;
    for (const RowMatrix& h : hidden) n += static_cast<size_t>(h.size()) * sizeof(float);
    return n;
  }
  void note_activations(size_t bytes) {
    result_.report.peak_activation_bytes = std::max(result_.report.peak_activation_bytes, static_cast<int64_t>(bytes));
  }
  // Why an input group of block l has nothing to fold 1/s into (empty: it has a producer; see awq.h).
  std::array<std::string, 4> awq_unfoldable_inputs(int64_t l) const {
    std::array<std::string, 4> why;
    if (!model_.has(names::attn_norm(l)))
      why[kAttnIn] = "AWQ scale not applied: no norm precedes q/k/v (post-norm block), the input is the raw residual";
    if (model_.config.residual_layout == ResidualLayout::Sequential && !model_.has(names::ffn_norm(l)))
      why[kMlpIn] = "AWQ scale not applied: no norm precedes the MLP (post-norm block), the input is the raw residual";
    if (!model_.config.has_gate())
      why[kMlpMid] = "AWQ scale not applied: down_proj's input gelu(up(x)) is not linear in up_proj's rows";
    return why;
  }

  bool embedding_gptq() const {
    if (!options_.embedding_and_head || options_.method != CalibrationMethod::Gptq) return false;
    if (model_.config.tie_word_embeddings || !model_.has(names::kLmHead) || !model_.has(names::kEmbedTokens))
      return false;
    for (const std::string& name : {names::kLmHead, names::kEmbedTokens}) {
      const auto target = choose_(kOutputLayer, name);
      if (target && !std::holds_alternative<DType>(*target))
        throw_error(ErrorKind::Usage, "calibration: GPTQ of '{}' takes a GGUF type, not {}", name,
                    describe_target(*target));
    }
    return true;
  }

  // The readers of block l's input residual (q/k/v behind the attention norm, gate/up behind the MLP norm), weighed
  // by the residual's mean inverse square on the calibration windows (the MLP's input is taken as the block's).
  void add_block_readers(EmbeddingHessian& h, int64_t l, const std::vector<RowMatrix>& residual) {
    const double s = mean_inverse_square(residual, model_.config.norm_eps);
    const bool unit = model_.config.norm_unit_offset;
    for (const auto& [input, norm] : {std::pair{kAttnIn, names::attn_norm(l)}, std::pair{kMlpIn, names::ffn_norm(l)}}) {
      std::vector<const Tensor*> readers;
      for (const Linear& lin : block_linears(l, model_.config.has_gate()))
        if (lin.input == input && model_.has(lin.name)) readers.push_back(&model_.tensor(lin.name));
      if (readers.empty()) continue;
      h.add_readers(model_.has(norm) ? &model_.tensor(norm) : nullptr, unit, readers, s);
    }
  }

  // After the blocks: GPTQ of the token embedding (its last reader is the float head behind the final norm), then
  // of the head on the final norm's outputs. Each replaces its tensor in the Model by blocks of its target type,
  // which the GGUF writer copies.
  void quantize_embedding_and_head(EmbeddingHessian& embedding, const std::vector<RowMatrix>& final_residual) {
    const auto start = Clock::now();
    embedding.add_readers(model_.has(names::kFinalNorm) ? &model_.tensor(names::kFinalNorm) : nullptr,
                          model_.config.norm_unit_offset, {&model_.tensor(names::kLmHead)},
                          mean_inverse_square(final_residual, model_.config.norm_eps));
    // The embedding's Hessian is a model of how its error spreads, not a measurement on the calibration inputs, so
    // GPTQ trusts it less: ten times the dampening (Q4_0 of llama-5m-kjv, three calibration seeds: mean KL on 20
    // kjv-eval windows 0.9-1.4 % lower than with the linears' dampening; on one seed, 3, 30 and 100 times were no
    // better).
    quantize_outside_block(names::kEmbedTokens, embedding.hessian(), 10.0);
    // GPTAQ: the head too is fitted to the float model's logits on the float model's final states.
    InputStatistics head_input(model_.config.hidden_size);
    std::optional<CrossStatistics> cross;
    if (asym()) cross.emplace(model_.config.hidden_size);
    for (size_t i = 0; i < final_residual.size(); ++i) {
      const RowMatrix x = runner_.final_norm(final_residual[i]);
      head_input.add(x);
      if (cross) cross->add(float_runner_->final_norm(float_hidden_[i]), x);
    }
    quantize_outside_block(names::kLmHead, head_input.hessian(), 1.0, cross ? &*cross : nullptr);
    result_.report.solver_seconds += since(start);
  }

  // damp_scale: multiplies GPTQ's dampening for this weight.
  void quantize_outside_block(const std::string& name, const Eigen::MatrixXd& h, double damp_scale = 1.0,
                              const CrossStatistics* cross = nullptr) {
    const auto target = choose_(kOutputLayer, name);
    if (!target) return;
    GptqOptions gptq = options_.gptq;
    gptq.damp_percent *= damp_scale;
    gptq.order_group = gguf_grid_joint_columns(std::get<DType>(*target));
    std::optional<GptqFactor> factor;
    std::optional<GptaqCorrection> correction;
    quantize_linear(kOutputLayer, name, h, factor, gptq, cross, correction);
  }

  bool asym() const { return options_.gptq_asym > 0 && options_.method == CalibrationMethod::Gptq; }

  Model& model_;
  const Model input_;  // the model as calibration found it (shares its tensors): the reference of weight_error
  const TargetChooser& choose_;
  const CalibrationOptions& options_;
  ModelRunner runner_;
  std::optional<ModelRunner> float_runner_;  // GPTAQ: the float model's blocks
  std::vector<RowMatrix> float_hidden_;      // GPTAQ: the float model's block inputs
  CalibrationResult result_;
  std::map<std::string, std::string> awq_notes_;  // linear → why AWQ left its input unscaled
};

}  // namespace

CalibrationResult quantize_calibrated(Model& model, const std::vector<std::vector<int32_t>>& windows,
                                      const TargetChooser& choose, const CalibrationOptions& options) {
  Calibrator calibrator(model, choose, options);
  return calibrator.run(windows);
}

std::vector<RtnTarget> uncalibrated_rtn_targets(const Model& model, const TargetChooser& choose) {
  std::vector<RtnTarget> out;
  for (int64_t l = 0; l < model.config.num_layers; ++l)
    for (const Linear& lin : block_linears(l, model.config.has_gate())) {
      const std::optional<QuantTarget> target = choose(l, lin.name);
      if (!target) continue;
      if (!std::holds_alternative<IntGridSpec>(*target))
        throw_error(ErrorKind::Usage, "{}: {} is a GGUF type; uncalibrated RTN here takes integer grids only",
                    lin.name, describe_target(*target));
      const IntGridSpec& spec = std::get<IntGridSpec>(*target);
      spec.validate(model.tensor(lin.name).cols(), lin.name);
      out.push_back({lin.name, spec});
    }
  return out;
}

GridQuantizedWeight quantize_rtn_linear(const Tensor& t, const IntGridSpec& spec, LinearReport& rep) {
  const std::vector<float> w = t.to_f32();
  IntWeightGrid grid(t.rows(), t.cols(), spec);
  const std::vector<float> q = rtn_quantize(w, grid);
  double err = 0, norm = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - q[i];
    err += d * d;
    norm += static_cast<double>(w[i]) * w[i];
  }
  rep = LinearReport{t.name(), describe_target(spec)};
  rep.error = rep.rtn_error = norm > 0 ? std::sqrt(err / norm) : 0.0;
  GridQuantizedWeight codes = grid.take();
  rep.weight_error = relative_error(t, Tensor::from_f32(t.name(), t.shape(), codes.dequantize()), nullptr);
  release_mapped_pages(t.data(), t.nbytes());  // a mapped input is read once
  return codes;
}

CalibrationResult quantize_uncalibrated_rtn(Model& model, const TargetChooser& choose) {
  CalibrationResult result;
  const auto start = Clock::now();
  for (const RtnTarget& target : uncalibrated_rtn_targets(model, choose)) {
    const Tensor& t = model.tensor(target.name);
    const std::vector<int64_t> shape = t.shape();
    LinearReport rep;
    GridQuantizedWeight codes = quantize_rtn_linear(t, target.spec, rep);
    model.set(Tensor::from_f32(target.name, shape, codes.dequantize()));
    result.int_weights[target.name] = std::move(codes);
    result.report.linears.push_back(std::move(rep));
  }
  result.report.solver_seconds = since(start);
  return result;
}

}  // namespace slmopt
