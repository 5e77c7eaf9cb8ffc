// AWQ scale search and folding. See awq.h for the recipe; the output error of every candidate comes from the
// input statistics (XᵀX), so the search keeps no activations.
#include "slmopt/quant/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {

namespace {

// Multiplies columns (per_column) or rows (!per_column) of a 2-D tensor by factors, or divides by them.
void scale_tensor(Model& model, const std::string& name, const Eigen::VectorXf& factors, bool per_column,
                  bool divide) {
  const Tensor& t = model.tensor(name);
  std::vector<float> v = t.to_f32();
  const int64_t cols = t.cols(), rows = t.rows();
  const int64_t want = per_column ? cols : rows;
  if (factors.size() != want)
    throw_error(ErrorKind::Internal, "AWQ: {} has {} {}, the scales {}", name, want, per_column ? "columns" : "rows",
                factors.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float f = factors[per_column ? c : r];
      float& x = v[static_cast<size_t>(r * cols + c)];
      x = divide ? x / f : x * f;
    }
  model.set(Tensor::from_f32(name, t.shape(), v));
}

}  // namespace

Eigen::VectorXd expand_kv_scales(const Eigen::VectorXd& v_out, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  Eigen::VectorXd s(heads * head_dim);
  const int64_t per_kv = heads / kv_heads;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t d = 0; d < head_dim; ++d) s[h * head_dim + d] = v_out[(h / per_kv) * head_dim + d];
  return s;
}

namespace {

// Divides a norm's output channels by f: its gain (stored w, or w with gain 1 + w under the description's
// norm_unit_offset, so the stored value becomes (1 + w)/f − 1) and, for LayerNorm with bias, its bias.
void divide_norm_output(Model& model, const std::string& weight, const std::string& bias, const Eigen::VectorXf& f) {
  const Tensor& t = model.tensor(weight);
  std::vector<float> w = t.to_f32();
  if (static_cast<int64_t>(w.size()) != f.size())
    throw_error(ErrorKind::Internal, "AWQ: {} has {} values, the scales {}", weight, w.size(), f.size());
  const bool offset = model.config.norm_unit_offset;
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = offset ? (1.0f + w[i]) / f[static_cast<Eigen::Index>(i)] - 1.0f : w[i] / f[static_cast<Eigen::Index>(i)];
  model.set(Tensor::from_f32(weight, t.shape(), w));
  if (model.has(bias)) scale_tensor(model, bias, f, true, true);  // a 1-D bias: one row, a column per output
}

}  // namespace

void fold_awq_scales(Model& model, int64_t layer, const AwqLayerScales& s) {
  const Config& c = model.config;
  auto producer_rows = [&](const std::string& weight, const std::string& bias, const Eigen::VectorXf& f) {
    scale_tensor(model, weight, f, false, true);
    if (model.has(bias)) scale_tensor(model, bias, f, true, true);
  };
  const bool parallel = c.residual_layout == ResidualLayout::Parallel;
  if (parallel && s.gate_up.size())
    throw_error(ErrorKind::Internal, "AWQ: layer {} has one norm feeding attention and MLP; its scales go in qkv", layer);
  if (s.qkv.size()) {
    const Eigen::VectorXf f = s.qkv.cast<float>();
    divide_norm_output(model, names::attn_norm(layer), names::attn_norm_bias(layer), f);
    for (const auto& n : {names::q_proj(layer), names::k_proj(layer), names::v_proj(layer)})
      scale_tensor(model, n, f, true, false);
    if (parallel) {
      if (c.has_gate()) scale_tensor(model, names::gate_proj(layer), f, true, false);
      scale_tensor(model, names::up_proj(layer), f, true, false);
    }
  }
  if (s.v_out.size()) {
    const Eigen::VectorXf f = s.v_out.cast<float>();
    producer_rows(names::v_proj(layer), names::v_bias(layer), f);
    scale_tensor(model, names::o_proj(layer),
                 expand_kv_scales(s.v_out, c.heads(layer), c.kv_heads(layer), c.head_dim).cast<float>(), true, false);
  }
  if (s.gate_up.size()) {
    const Eigen::VectorXf f = s.gate_up.cast<float>();
    divide_norm_output(model, names::ffn_norm(layer), names::ffn_norm_bias(layer), f);
    if (c.has_gate()) scale_tensor(model, names::gate_proj(layer), f, true, false);
    scale_tensor(model, names::up_proj(layer), f, true, false);
  }
  if (s.down.size()) {
    if (!c.has_gate())
      throw_error(ErrorKind::Internal, "AWQ: layer {}: down_proj's input is not linear in up_proj's rows", layer);
    const Eigen::VectorXf f = s.down.cast<float>();
    producer_rows(names::up_proj(layer), names::up_bias(layer), f);
    scale_tensor(model, names::down_proj(layer), f, true, false);
  }
}

Eigen::VectorXd awq_search_scales(const AwqGroupInput& group, const InputStatistics& stats,
                                  const GroupQuantizer& quantize, const AwqOptions& options,
                                  const std::vector<int64_t>* tie, int64_t tied, double* best_alpha) {
  const int64_t in = stats.columns();
  const int64_t gc = group.group_columns > 0 ? group.group_columns : in;
  // mean |ŵ| per input column, ŵ = |w| / max|w| of its (row, group)
  Eigen::VectorXd w_mean = Eigen::VectorXd::Zero(in);
  int64_t total_rows = 0;
  for (size_t i = 0; i < group.weights.size(); ++i) {
    const std::span<const float> w = group.weights[i];
    for (int64_t r = 0; r < group.rows[i]; ++r)
      for (int64_t c0 = 0; c0 < in; c0 += gc) {
        float m = 0;
        for (int64_t c = c0; c < std::min(in, c0 + gc); ++c) m = std::max(m, std::abs(w[static_cast<size_t>(r * in + c)]));
        if (m > 0)
          for (int64_t c = c0; c < std::min(in, c0 + gc); ++c)
            w_mean[c] += std::abs(w[static_cast<size_t>(r * in + c)]) / m;
      }
    total_rows += group.rows[i];
  }
  w_mean /= static_cast<double>(std::max<int64_t>(1, total_rows));
  Eigen::VectorXd x_mean = stats.mean_abs();

  // Tied channels share statistics: average them over the channels that map to one scale.
  const int64_t n = tie ? tied : in;
  Eigen::VectorXd xs = Eigen::VectorXd::Zero(n), ws = Eigen::VectorXd::Zero(n);
  if (tie) {
    Eigen::VectorXd count = Eigen::VectorXd::Zero(n);
    for (int64_t c = 0; c < in; ++c) {
      const int64_t t = (*tie)[static_cast<size_t>(c)];
      xs[t] += x_mean[c], ws[t] += w_mean[c], count[t] += 1;
    }
    xs = xs.cwiseQuotient(count.cwiseMax(1.0));
    ws = ws.cwiseQuotient(count.cwiseMax(1.0));
  } else {
    xs = x_mean, ws = w_mean;
  }

  // The output error of the group rounded at scales s: each member scaled, rounded, scaled back (the folded
  // model's weights), its error form on the calibration inputs (input_statistics.h: F32 products, double sums).
  const OutputErrorForm error_form(stats.xtx());
  auto loss_of = [&](const Eigen::VectorXd& s_short) {
    std::vector<float> s(static_cast<size_t>(in)), inverse(static_cast<size_t>(in));
    for (int64_t c = 0; c < in; ++c) {
      s[static_cast<size_t>(c)] = static_cast<float>(s_short[tie ? (*tie)[static_cast<size_t>(c)] : c]);
      inverse[static_cast<size_t>(c)] = 1.0f / s[static_cast<size_t>(c)];
    }
    double loss = 0;
    for (size_t i = 0; i < group.weights.size(); ++i) {
      const int64_t rows = group.rows[i];
      const std::span<const float> w = group.weights[i];
      std::vector<float> scaled(w.size());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < in; ++c)
          scaled[static_cast<size_t>(r * in + c)] = w[static_cast<size_t>(r * in + c)] * s[static_cast<size_t>(c)];
      std::vector<float> q = quantize(i, scaled);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < in; ++c) q[static_cast<size_t>(r * in + c)] *= inverse[static_cast<size_t>(c)];
      loss += error_form(w, q, rows);
    }
    return loss;
  };

  // Identity first: a group no α improves keeps s = 1 (AutoAWQ has no such fallback).
  Eigen::VectorXd best = Eigen::VectorXd::Ones(n);
  double best_loss = loss_of(best), chosen = -1;
  for (int i = 0; i < options.alpha_grid; ++i) {
    const double alpha = static_cast<double>(i) / options.alpha_grid;
    Eigen::VectorXd s(n);
    for (int64_t c = 0; c < n; ++c)
      s[c] = std::max(1e-4, std::pow(xs[c], alpha) / (std::pow(ws[c], 1 - alpha) + 1e-4));
    s /= std::sqrt(s.maxCoeff() * s.minCoeff());
    const double loss = loss_of(s);
    if (loss < best_loss) best_loss = loss, best = s, chosen = alpha;
  }
  if (best_alpha) *best_alpha = chosen;
  return best;
}

}  // namespace slmopt
