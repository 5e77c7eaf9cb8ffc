// Least-squares repair of pruned projections (see refit.h for the objective). The original and the pruned
// model are advanced side by side, one block at a time over all windows; an observer captures the projections'
// inputs and outputs (the original o/down outputs, and for the FFN fit the pruned o_proj output, so the residual
// the MLP must restore is known).
#include "slmopt/prune/refit.h"

#include <algorithm>
#include <map>

#include <Eigen/Cholesky>
#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

using MatrixD = Eigen::MatrixXd;

// Copies the inputs and outputs of named linear layers during one block run.
class Capture : public LinearObserver {
 public:
  Capture(std::vector<std::string> inputs_of, std::vector<std::string> outputs_of)
      : inputs_of_(std::move(inputs_of)), outputs_of_(std::move(outputs_of)) {}
  void on_linear(const LinearActivation& a) override {
    if (std::find(inputs_of_.begin(), inputs_of_.end(), a.weight) != inputs_of_.end()) inputs[a.weight] = a.input;
    if (a.output && std::find(outputs_of_.begin(), outputs_of_.end(), a.weight) != outputs_of_.end())
      outputs[a.weight] = *a.output;
  }
  bool wants_output() const override { return !outputs_of_.empty(); }
  std::map<std::string, RowMatrix> inputs, outputs;

 private:
  std::vector<std::string> inputs_of_, outputs_of_;
};

// Runs block `layer` of `runner` on `h` (advancing it) while capturing.
Capture run_capturing(const ModelRunner& runner, int64_t layer, RowMatrix& h, std::vector<std::string> inputs_of,
                      std::vector<std::string> outputs_of) {
  Capture cap(std::move(inputs_of), std::move(outputs_of));
  RunOptions run;
  run.observer = &cap;
  runner.run_block(layer, h, {}, run);
  return cap;
}

// Normal-equation sums of one fit.
struct LeastSquares {
  MatrixD gram;    // XᵀX [in, in]
  MatrixD cross;   // XᵀY [in, out]
  double target_energy = 0;

  void add(const RowMatrix& x, const RowMatrix& y) {
    const MatrixD xd = x.cast<double>(), yd = y.cast<double>();
    if (gram.size() == 0) {
      gram = MatrixD::Zero(xd.cols(), xd.cols());
      cross = MatrixD::Zero(xd.cols(), yd.cols());
    }
    gram.noalias() += xd.transpose() * xd;
    cross.noalias() += xd.transpose() * yd;
    target_energy += yd.squaredNorm();
  }
  // ‖X Wᵀ − Y‖² / ‖Y‖² for W [out, in].
  double relative_error(const MatrixD& w) const {
    const double fitted = ((w * gram).cwiseProduct(w)).sum() - 2 * w.cwiseProduct(cross.transpose()).sum();
    return target_energy > 0 ? (fitted + target_energy) / target_energy : 0;
  }
  MatrixD solve(double ridge) const {
    MatrixD a = gram;
    const double lambda = ridge * std::max(a.diagonal().mean(), 1e-12);
    a.diagonal().array() += lambda;
    return Eigen::LDLT<MatrixD>(a).solve(cross).transpose();
  }
};

RowMatrix minus_bias(RowMatrix y, const StoredLinear& lin) {
  if (lin.has_bias()) y.rowwise() -= lin.bias.transpose();
  return y;
}

// Fits `lin` (a projection of pruned layer `layer`), stores it in the model, reloads the runner.
SublayerRefit fit_and_store(const LeastSquares& ls, const StoredLinear& lin, Model& pruned, ModelRunner& runner,
                            int64_t layer, double ridge, bool is_o) {
  SublayerRefit r;
  r.layer = layer;
  r.weight = lin.name();
  r.error_before = ls.relative_error(decode_matrix(lin.weight).cast<double>());
  const MatrixD fitted = ls.solve(ridge);
  const std::vector<float> values = [&] {
    RowMatrix f = fitted.cast<float>();
    return std::vector<float>(f.data(), f.data() + f.size());
  }();
  const Tensor& old = pruned.tensor(r.weight);
  pruned.set(Tensor::from_f32_as(r.weight, old.shape(), values, old.dtype()));
  runner.reload_layer(pruned, layer);
  const LayerWeights& now = runner.weights().layers[static_cast<size_t>(layer)];
  r.error_after = ls.relative_error(decode_matrix((is_o ? now.o : now.down).weight).cast<double>());
  return r;
}

}  // namespace

RefitReport refit_pruned_model(const ModelRunner& original, Model& pruned, const PrunePlan& plan,
                               std::span<const std::vector<int32_t>> windows, const RefitOptions& options) {
  if (windows.empty()) throw_error(ErrorKind::Usage, "refit needs at least one calibration window");
  const Config& oc = original.config();
  if (static_cast<int64_t>(plan.layers.size()) != pruned.config.num_layers)
    throw_error(ErrorKind::Usage, "refit: the plan has {} layers, the pruned model {}", plan.layers.size(),
                pruned.config.num_layers);
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const auto& k = plan.layers[i];
    const auto li = static_cast<int64_t>(i);
    if (k.source_layer < 0 || k.source_layer >= original.layer_count() ||
        static_cast<int64_t>(k.heads.size()) != pruned.config.heads(li) ||
        static_cast<int64_t>(k.ffn.size()) != pruned.config.ffn(li))
      throw_error(ErrorKind::Usage, "refit: the plan does not describe layer {} of the pruned model", i);
  }

  ModelRunner runner(pruned);
  const size_t W = windows.size();
  std::vector<RowMatrix> h_orig(W), h_pruned(W);
  RefitReport report;
  for (size_t w = 0; w < W; ++w) {
    h_orig[w] = original.embed(windows[w]);
    h_pruned[w] = runner.embed(windows[w]);
    report.tokens += static_cast<int64_t>(windows[w].size());
  }
  // Without post norms a sublayer's output enters the residual linearly (x += rs·f), so the fit can also absorb
  // the drift between the two streams; behind a post norm (Gemma, OLMo-2) it matches the original sublayer's
  // output instead (see refit.h).
  const bool linear_residual = oc.norm_placement == NormPlacement::Pre;
  const double rs = oc.residual_scale;
  int64_t orig_next = 0;  // the original stream sits at the input of this layer
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const LayerKeep& k = plan.layers[i];
    const auto li = static_cast<int64_t>(i);
    const int64_t s = k.source_layer;
    for (; orig_next < s; ++orig_next)
      for (size_t w = 0; w < W; ++w) original.run_block(orig_next, h_orig[w]);
    // The original block's inputs (h_in_orig), its o and down outputs, and its output (h_orig, advanced).
    const LayerWeights& ow = original.weights().layers[static_cast<size_t>(s)];
    std::vector<RowMatrix> h_in_orig(W), o_orig(W), down_orig(W);
    for (size_t w = 0; w < W; ++w) {
      h_in_orig[w] = h_orig[w];
      Capture cap = run_capturing(original, s, h_orig[w], {}, {ow.o.name(), ow.down.name()});
      o_orig[w] = std::move(cap.outputs.at(ow.o.name()));
      down_orig[w] = std::move(cap.outputs.at(ow.down.name()));
    }
    orig_next = s + 1;

    const bool attention_cut = static_cast<int64_t>(k.heads.size()) < oc.heads(s);
    const bool ffn_cut = static_cast<int64_t>(k.ffn.size()) < oc.ffn(s);
    if (attention_cut) {
      const StoredLinear& o = runner.weights().layers[i].o;
      LeastSquares ls;
      for (size_t w = 0; w < W; ++w) {
        RowMatrix h = h_pruned[w];
        Capture cap = run_capturing(runner, li, h, {o.name()}, {});
        RowMatrix target = o_orig[w];
        if (linear_residual) target += (h_in_orig[w] - h_pruned[w]) / static_cast<float>(rs);
        ls.add(cap.inputs.at(o.name()), minus_bias(std::move(target), o));
      }
      report.sublayers.push_back(fit_and_store(ls, o, pruned, runner, li, options.ridge, true));
    }
    if (ffn_cut) {
      const LayerWeights& pw = runner.weights().layers[i];
      LeastSquares ls;
      for (size_t w = 0; w < W; ++w) {
        RowMatrix h = h_pruned[w];
        Capture cap = run_capturing(runner, li, h, {pw.down.name()}, {pw.o.name()});
        RowMatrix target = down_orig[w];
        if (linear_residual)
          target = (h_orig[w] - h_pruned[w]) / static_cast<float>(rs) - cap.outputs.at(pw.o.name());
        ls.add(cap.inputs.at(pw.down.name()), minus_bias(std::move(target), pw.down));
      }
      report.sublayers.push_back(fit_and_store(ls, pw.down, pruned, runner, li, options.ridge, false));
    }
    for (size_t w = 0; w < W; ++w) runner.run_block(li, h_pruned[w]);
  }
  return report;
}

nlohmann::json refit_report_to_json(const RefitReport& report) {
  nlohmann::json sub = nlohmann::json::array();
  for (const auto& s : report.sublayers)
    sub.push_back({{"layer", s.layer}, {"weight", s.weight}, {"error_before", s.error_before},
                   {"error_after", s.error_after}});
  return {{"tokens", report.tokens}, {"sublayers", std::move(sub)}};
}

}  // namespace slmopt
