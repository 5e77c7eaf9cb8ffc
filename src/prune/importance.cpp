// Importance scores for heads, KV groups and FFN channels (see importance.h for the three methods).
//
// MaskedLoss is the expensive one: one partial forward per unit. Two things keep it affordable on CPU: the
// unmasked model's block inputs are computed once per window and reused (a unit in layer l starts from layer
// l's cached input), and an FFN channel is masked by subtracting its rank-1 contribution act_c(t) · W_down[:, c]
// from layer l's cached output, so layer l itself is not re-run. Units are scored in parallel; each unit's loss
// is a double sum over its windows in order, so the scores do not depend on the thread count.
#include "slmopt/prune/importance.h"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/core/progress.h"
#include "slmopt/exec/log_softmax.h"

namespace slmopt {
namespace {

using Windows = std::span<const std::vector<int32_t>>;

// Hands one named linear layer's input to a callback.
class InputCapture : public LinearObserver {
 public:
  InputCapture(const std::string& weight, std::function<void(const RowMatrix&)> consume)
      : weight_(weight), consume_(std::move(consume)) {}
  void on_linear(const LinearActivation& a) override {
    if (a.weight == weight_) consume_(a.input);
  }

 private:
  const std::string& weight_;
  std::function<void(const RowMatrix&)> consume_;
};

double nll_sum(const ModelRunner& runner, const RowMatrix& final_hidden, const std::vector<int32_t>& tokens) {
  double sum = 0;
  for (double v : next_token_nll(runner.final_logits(final_hidden), tokens)) sum += v;
  return sum;
}

// Runs blocks first..L-1 on hidden in place and returns the window's summed next-token loss.
double loss_from_layer(const ModelRunner& runner, int64_t first, RowMatrix& hidden, const std::vector<int32_t>& tokens,
                       const RunOptions& options = {}) {
  for (int64_t l = first; l < runner.layer_count(); ++l) runner.run_block(l, hidden, {}, options);
  return nll_sum(runner, hidden, tokens);
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void size_layers(const ModelRunner& runner, ImportanceScores& scores) {
  scores.layers.resize(static_cast<size_t>(runner.layer_count()));
  for (int64_t l = 0; l < runner.layer_count(); ++l) {
    const LayerWeights& w = runner.weights().layers[static_cast<size_t>(l)];
    auto& li = scores.layers[static_cast<size_t>(l)];
    li.heads.assign(static_cast<size_t>(w.n_heads), 0.0);
    li.kv_groups.assign(static_cast<size_t>(w.n_kv_heads), 0.0);
    li.ffn.assign(static_cast<size_t>(w.ffn), 0.0);
  }
}

void random_scores(ImportanceScores& scores, uint64_t seed) {
  uint64_t state = seed;
  auto draw = [&] { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53; };
  for (auto& layer : scores.layers) {
    for (double& v : layer.heads) v = draw();
    for (double& v : layer.kv_groups) v = draw();
    for (double& v : layer.ffn) v = draw();
  }
}

void activation_scores(const ModelRunner& runner, Windows windows, ImportanceScores& scores, bool show_progress) {
  const int64_t hd = runner.config().head_dim;
  // ‖W_down[:, c]‖ per layer.
  std::vector<Eigen::VectorXd> down_norms;
  for (const auto& w : runner.weights().layers)
    down_norms.push_back(decode_matrix(w.down.weight).cast<double>().colwise().norm().transpose());

  class Observer : public LinearObserver {
   public:
    Observer(const ModelRunner& r, const std::vector<Eigen::VectorXd>& dn, ImportanceScores& s, int64_t head_dim)
        : runner_(r), down_norms_(dn), scores_(s), hd_(head_dim) {}
    void on_linear(const LinearActivation& a) override {
      if (a.layer == kOutputLayer) return;
      const LayerWeights& w = runner_.weights().layers[static_cast<size_t>(a.layer)];
      auto& out = scores_.layers[static_cast<size_t>(a.layer)];
      if (a.weight == w.o.name()) {
        // The stored o_proj decoded for this call only (no float copy of the model is kept).
        const RowMatrix o = decode_matrix(w.o.weight);
        const int64_t group = w.n_heads / w.n_kv_heads;
        for (int64_t g = 0; g < w.n_kv_heads; ++g) {
          RowMatrix group_sum = RowMatrix::Zero(a.input.rows(), o.rows());
          for (int64_t h = g * group; h < (g + 1) * group; ++h) {
            const RowMatrix contribution =
                a.input.middleCols(h * hd_, hd_) * o.middleCols(h * hd_, hd_).transpose();
            for (int64_t t = 0; t < contribution.rows(); ++t)
              out.heads[static_cast<size_t>(h)] += static_cast<double>(contribution.row(t).norm());
            group_sum += contribution;
          }
          for (int64_t t = 0; t < group_sum.rows(); ++t)
            out.kv_groups[static_cast<size_t>(g)] += static_cast<double>(group_sum.row(t).norm());
        }
      } else if (a.weight == w.down.name()) {
        const Eigen::VectorXd& norms = down_norms_[static_cast<size_t>(a.layer)];
        for (int64_t t = 0; t < a.input.rows(); ++t)
          for (int64_t c = 0; c < a.input.cols(); ++c)
            out.ffn[static_cast<size_t>(c)] += std::abs(static_cast<double>(a.input(t, c))) * norms[c];
      }
    }

   private:
    const ModelRunner& runner_;
    const std::vector<Eigen::VectorXd>& down_norms_;
    ImportanceScores& scores_;
    int64_t hd_;
  } observer(runner, down_norms, scores, hd);

  // The observer runs the windows in order on this thread (deterministic accumulation). Only the blocks are
  // needed, so the output head is skipped.
  RunOptions options;
  options.observer = &observer;
  Progress progress("activation importance", windows.size(), show_progress);
  for (const auto& window : windows) {
    RowMatrix hidden = runner.embed(window);
    for (int64_t l = 0; l < runner.layer_count(); ++l) runner.run_block(l, hidden, {}, options);
    scores.tokens += static_cast<int64_t>(window.size());
    progress.advance();
  }
  const double n = static_cast<double>(scores.tokens);
  for (auto& layer : scores.layers) {
    for (double& v : layer.heads) v /= n;
    for (double& v : layer.kv_groups) v /= n;
    for (double& v : layer.ffn) v /= n;
  }
}

// Scores heads and KV groups (`heads`) and/or FFN channels (`ffn`) by masked loss; the other units keep the
// scores they have.
void masked_loss_scores(const ModelRunner& runner, Windows windows, ImportanceScores& scores, bool heads, bool ffn,
                        bool show_progress) {
  const int64_t L = runner.layer_count();
  const size_t W = windows.size();
  uint64_t units = 0;
  for (const auto& w : runner.weights().layers)
    units += static_cast<uint64_t>((heads ? w.n_heads + w.n_kv_heads : 0) + (ffn ? w.ffn : 0));
  Progress progress(heads && !ffn ? "head importance (loss)" : "loss importance", units, show_progress);
  // inputs[l][w]: the unmasked input of block l for window w; inputs[L][w] the final hidden state.
  std::vector<std::vector<RowMatrix>> inputs(static_cast<size_t>(L + 1), std::vector<RowMatrix>(W));
  parallel_for(W, [&](size_t begin, size_t end) {
    for (size_t w = begin; w < end; ++w) {
      RowMatrix hidden = runner.embed(windows[w]);
      inputs[0][w] = hidden;
      for (int64_t l = 0; l < L; ++l) {
        runner.run_block(l, hidden);
        inputs[static_cast<size_t>(l + 1)][w] = hidden;
      }
    }
  });
  double base_sum = 0;
  int64_t positions = 0;
  for (size_t w = 0; w < W; ++w) {
    base_sum += nll_sum(runner, inputs[static_cast<size_t>(L)][w], windows[w]);
    positions += static_cast<int64_t>(windows[w].size()) - 1;
  }
  scores.tokens = positions;
  scores.base_loss = base_sum / static_cast<double>(positions);
  auto increase = [&](double sum) { return (sum - base_sum) / static_cast<double>(positions); };

  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights& w = runner.weights().layers[static_cast<size_t>(l)];
    auto& out = scores.layers[static_cast<size_t>(l)];
    const int64_t n_heads = w.n_heads, n_kv = w.n_kv_heads, group = n_heads / n_kv;

    // Heads, then KV groups (all query heads of the group masked): through ForwardMasks from layer l's input.
    if (heads) parallel_for(static_cast<size_t>(n_heads + n_kv), [&](size_t begin, size_t end) {
      for (size_t unit = begin; unit < end; ++unit) {
        ForwardMasks masks;
        masks.heads.assign(static_cast<size_t>(L), {});
        auto& gates = masks.heads[static_cast<size_t>(l)];
        gates.assign(static_cast<size_t>(n_heads), 1.0f);
        const int64_t u = static_cast<int64_t>(unit);
        if (u < n_heads) {
          gates[unit] = 0.0f;
        } else {
          for (int64_t h = (u - n_heads) * group; h < (u - n_heads + 1) * group; ++h) gates[static_cast<size_t>(h)] = 0;
        }
        RunOptions options;
        options.masks = &masks;
        double sum = 0;
        for (size_t win = 0; win < W; ++win) {
          RowMatrix hidden = inputs[static_cast<size_t>(l)][win];
          runner.run_block(l, hidden, {}, options);
          sum += loss_from_layer(runner, l + 1, hidden, windows[win]);
        }
        if (u < n_heads)
          out.heads[unit] = increase(sum);
        else
          out.kv_groups[static_cast<size_t>(u - n_heads)] = increase(sum);
        progress.advance();
      }
    });
    if (!ffn) continue;

    // FFN channels: layer l's MLP activations, then each channel's rank-1 contribution removed from its output.
    // That shortcut holds only while the MLP output enters the residual stream linearly; with a norm on the MLP
    // output (Sandwich / Post placement) or a residual multiplier the channel is masked and layer l re-run.
    const bool linear_output = !w.ffn_post_norm.present() && runner.config().residual_scale == 1.0;
    std::vector<RowMatrix> acts(W);
    RowMatrix down;
    if (linear_output) {
      for (size_t win = 0; win < W; ++win) {
        InputCapture capture(w.down.name(), [&](const RowMatrix& input) { acts[win] = input; });
        RunOptions options;
        options.observer = &capture;
        RowMatrix hidden = inputs[static_cast<size_t>(l)][win];
        runner.run_block(l, hidden, {}, options);
      }
      down = decode_matrix(w.down.weight);  // this layer's only, decoded on demand
    }
    parallel_for(static_cast<size_t>(w.ffn), [&](size_t begin, size_t end) {
      for (size_t c = begin; c < end; ++c) {
        double sum = 0;
        for (size_t win = 0; win < W; ++win) {
          RowMatrix hidden;
          if (linear_output) {
            hidden = inputs[static_cast<size_t>(l + 1)][win];
            hidden.noalias() -= acts[win].col(static_cast<int64_t>(c)) * down.col(static_cast<int64_t>(c)).transpose();
          } else {
            ForwardMasks masks;
            masks.ffn_channels.assign(static_cast<size_t>(L), {});
            masks.ffn_channels[static_cast<size_t>(l)].assign(static_cast<size_t>(w.ffn), 1.0f);
            masks.ffn_channels[static_cast<size_t>(l)][c] = 0.0f;
            RunOptions options;
            options.masks = &masks;
            hidden = inputs[static_cast<size_t>(l)][win];
            runner.run_block(l, hidden, {}, options);
          }
          sum += loss_from_layer(runner, l + 1, hidden, windows[win]);
        }
        out.ffn[c] = increase(sum);
        progress.advance();
      }
    });
  }
}

}  // namespace

const char* importance_method_name(ImportanceMethod method) {
  switch (method) {
    case ImportanceMethod::MaskedLoss: return "loss";
    case ImportanceMethod::Activation: return "activation";
    case ImportanceMethod::Random: return "random";
    case ImportanceMethod::Mixed: return "mixed";
  }
  return "?";
}

std::optional<ImportanceMethod> parse_importance_method(std::string_view name) {
  for (auto m : {ImportanceMethod::MaskedLoss, ImportanceMethod::Activation, ImportanceMethod::Random,
                 ImportanceMethod::Mixed})
    if (name == importance_method_name(m)) return m;
  return std::nullopt;
}

double head_loss_cost(const ModelRunner& runner, size_t windows) {
  const int64_t L = runner.layer_count();
  double block_runs = 0;
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights& w = runner.weights().layers[static_cast<size_t>(l)];
    block_runs += static_cast<double>(w.n_heads + w.n_kv_heads) * static_cast<double>(L - l);
  }
  return L ? block_runs / static_cast<double>(L) * static_cast<double>(windows) : 0;
}

ImportanceScores compute_importance(const ModelRunner& runner, std::span<const std::vector<int32_t>> windows,
                                    const ImportanceOptions& options) {
  ImportanceScores scores;
  scores.method = options.method;
  scores.head_method = options.method;
  scores.seed = options.seed;
  scores.windows = static_cast<int64_t>(windows.size());
  size_layers(runner, scores);
  if (options.method == ImportanceMethod::Random) {
    random_scores(scores, options.seed);
    return scores;
  }
  if (windows.empty()) throw_error(ErrorKind::Usage, "importance scores need at least one calibration window");
  for (size_t i = 0; i < windows.size(); ++i)
    if (windows[i].size() < 2)
      throw_error(ErrorKind::Usage, "calibration window {} has {} tokens; importance scores need at least 2", i,
                  windows[i].size());
  switch (options.method) {
    case ImportanceMethod::Activation:
      activation_scores(runner, windows, scores, options.progress);
      scores.head_method = ImportanceMethod::Activation;
      break;
    case ImportanceMethod::MaskedLoss:
      masked_loss_scores(runner, windows, scores, true, true, options.progress);
      break;
    case ImportanceMethod::Mixed: {
      // FFN channels (and, first, heads) by activation: one forward pass. Heads then by masked loss when that
      // stays within the budget; its cost grows with heads × layers² and would take hours on a 1B model.
      activation_scores(runner, windows, scores, options.progress);
      scores.head_method = ImportanceMethod::Activation;
      const double cost = head_loss_cost(runner, windows.size());
      if (cost <= options.head_loss_budget) {
        const int64_t activation_tokens = scores.tokens;
        masked_loss_scores(runner, windows, scores, true, false, options.progress);
        scores.head_method = ImportanceMethod::MaskedLoss;
        scores.tokens = activation_tokens;
      } else {
        scores.head_note = fmt::format("heads scored by activation: masked loss would cost {:.0f} forward passes "
                                       "(budget {:.0f})", cost, options.head_loss_budget);
      }
      break;
    }
    case ImportanceMethod::Random: break;
  }
  return scores;
}

nlohmann::json importance_to_json(const ImportanceScores& scores) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : scores.layers) layers.push_back({{"heads", l.heads}, {"kv_groups", l.kv_groups}, {"ffn", l.ffn}});
  nlohmann::json out = {{"method", importance_method_name(scores.method)},
          {"seed", scores.seed},
          {"windows", scores.windows},
          {"tokens", scores.tokens},
          {"base_loss", scores.base_loss},
          {"layers", std::move(layers)}};
  if (scores.method == ImportanceMethod::Mixed) {
    out["heads_method"] = importance_method_name(scores.head_method);
    if (!scores.head_note.empty()) out["heads_note"] = scores.head_note;
  }
  return out;
}

ImportanceScores importance_from_json(const nlohmann::json& json, const std::string& source) {
  auto field = [&](const nlohmann::json& obj, const char* name) -> const nlohmann::json& {
    if (!obj.is_object() || !obj.contains(name))
      throw_error(ErrorKind::BadInput, "{}: importance scores lack the field '{}'", source, name);
    return obj.at(name);
  };
  ImportanceScores scores;
  try {
    const auto method = parse_importance_method(field(json, "method").get<std::string>());
    if (!method) throw_error(ErrorKind::BadInput, "{}: unknown importance method", source);
    scores.method = *method;
    scores.head_method = *method;
    if (json.contains("heads_method")) {
      const auto head_method = parse_importance_method(json.at("heads_method").get<std::string>());
      if (!head_method) throw_error(ErrorKind::BadInput, "{}: unknown heads_method", source);
      scores.head_method = *head_method;
    }
    if (json.contains("heads_note")) scores.head_note = json.at("heads_note").get<std::string>();
    scores.seed = field(json, "seed").get<uint64_t>();
    scores.windows = field(json, "windows").get<int64_t>();
    scores.tokens = field(json, "tokens").get<int64_t>();
    scores.base_loss = field(json, "base_loss").get<double>();
    for (const auto& l : field(json, "layers")) {
      LayerImportance li;
      li.heads = field(l, "heads").get<std::vector<double>>();
      li.kv_groups = field(l, "kv_groups").get<std::vector<double>>();
      li.ffn = field(l, "ffn").get<std::vector<double>>();
      scores.layers.push_back(std::move(li));
    }
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::BadInput, "{}: importance scores are malformed: {}", source, e.what());
  }
  return scores;
}

}  // namespace slmopt
