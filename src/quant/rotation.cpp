// Rotations folded into the weights (see rotation.h for the algebra). Every matrix is read once, its norm gain
// folded and its rotation applied in double precision, and stored once as F32, so the rotated model differs from
// the original by one float rounding per weight.
#include "slmopt/quant/rotation.h"

#include <cmath>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

// splitmix64 as a stream: a fixed, platform-independent sequence for a seed (std::normal_distribution is not
// specified bit for bit across standard libraries).
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double uniform_open(uint64_t& state) { return (static_cast<double>(next_random(state) >> 11) + 0.5) * 0x1.0p-53; }

double gaussian(uint64_t& state) {
  const double u = uniform_open(state), v = uniform_open(state);
  return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
}

using Values = std::vector<double>;

Values load(const Model& model, const std::string& name) {
  const std::vector<float> f = model.tensor(name).to_f32();
  return Values(f.begin(), f.end());
}

void store(Model& model, const std::string& name, const std::vector<int64_t>& shape, const Values& v) {
  const std::vector<float> f(v.begin(), v.end());
  model.set(Tensor::from_f32(name, shape, f));
}

// Each row of a [rows, cols] matrix (cols = M.size()) ← row·M.
void rotate_rows(Values& w, int64_t rows, const RandomizedHadamard& m) {
  const int64_t cols = m.size();
  if (static_cast<int64_t>(w.size()) != rows * cols)
    throw_error(ErrorKind::Internal, "rotation: {} values are not {} rows of {}", w.size(), rows, cols);
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) m.apply(w.data() + r * static_cast<size_t>(cols));
  }, 16);
}

// Each column of a [rows, cols] matrix (rows = M.size()) c ← Mᵀc (as a row: cᵀ·M), i.e. W ← MᵀW.
void rotate_columns(Values& w, int64_t rows, int64_t cols, const RandomizedHadamard& m) {
  Values t(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = w[static_cast<size_t>(r * cols + c)];
  rotate_rows(t, cols, m);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[static_cast<size_t>(r * cols + c)] = t[static_cast<size_t>(c * rows + r)];
}

void scale_columns(Values& w, int64_t cols, const Values& g) {
  for (size_t i = 0; i < w.size(); ++i) w[i] *= g[i % static_cast<size_t>(cols)];
}

// The gain a norm multiplies by (w, or 1 + w for unit-offset norms).
Values effective_gain(const Model& model, const std::string& name) {
  Values g = load(model, name);
  if (model.config.norm_unit_offset)
    for (double& x : g) x += 1.0;
  return g;
}

// Stores a norm whose effective gain is `value` everywhere.
void set_uniform_gain(Model& model, const std::string& name, double value) {
  const Tensor& t = model.tensor(name);
  store(model, name, t.shape(), Values(static_cast<size_t>(t.numel()), model.config.norm_unit_offset ? value - 1.0 : value));
}

// An input projection: W ← W·diag(g)·Q (g empty: no norm folded).
void rotate_input_side(Model& model, const std::string& name, const Values& g, const RandomizedHadamard& q) {
  const Tensor& t = model.tensor(name);
  if (t.cols() != q.size())
    throw_error(ErrorKind::BadInput, "rotation: {} has {} input columns, the residual stream {}", name, t.cols(), q.size());
  const std::vector<int64_t> shape = t.shape();
  Values w = load(model, name);
  if (!g.empty()) scale_columns(w, shape.back(), g);
  rotate_rows(w, static_cast<int64_t>(w.size()) / q.size(), q);
  store(model, name, shape, w);
}

// A per-head block of rows [heads·head_dim, cols] (v_proj, its bias with cols = 1): each head's rows ← Pᵀ·rows.
void rotate_head_rows(Values& w, int64_t rows, int64_t cols, const RandomizedHadamard& p, const std::string& name) {
  const int64_t hd = p.size();
  if (rows % hd != 0) throw_error(ErrorKind::BadInput, "rotation: {} has {} rows, not whole heads of {}", name, rows, hd);
  for (int64_t h = 0; h < rows / hd; ++h) {
    Values block(w.begin() + h * hd * cols, w.begin() + (h + 1) * hd * cols);
    rotate_columns(block, hd, cols, p);
    std::copy(block.begin(), block.end(), w.begin() + h * hd * cols);
  }
}

}  // namespace

RandomizedHadamard::RandomizedHadamard(int64_t n, uint64_t seed) : n_(n) {
  if (n <= 0) throw_error(ErrorKind::Internal, "rotation: width {}", n);
  p_ = n & -n;  // the largest power of two dividing n
  m_ = n / p_;
  uint64_t state = seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(n));
  signs_.resize(static_cast<size_t>(n));
  for (double& s : signs_) s = (next_random(state) >> 63) ? -1.0 : 1.0;
  if (m_ > 1) {
    Eigen::MatrixXd g(m_, m_);
    for (int64_t i = 0; i < m_; ++i)
      for (int64_t j = 0; j < m_; ++j) g(i, j) = gaussian(state);
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    Eigen::MatrixXd q = qr.householderQ();
    const Eigen::MatrixXd r = qr.matrixQR().triangularView<Eigen::Upper>();
    // Signs fixed by R's diagonal: the Haar-distributed orthogonal matrix, not one biased by Householder's choice.
    for (int64_t j = 0; j < m_; ++j)
      if (r(j, j) < 0) q.col(j) *= -1.0;
    r_.resize(static_cast<size_t>(m_ * m_));
    for (int64_t i = 0; i < m_; ++i)
      for (int64_t j = 0; j < m_; ++j) r_[static_cast<size_t>(i * m_ + j)] = q(i, j);
  }
}

std::string RandomizedHadamard::describe() const {
  if (m_ == 1) return fmt::format("randomised Hadamard {} (H{})", n_, p_);
  return fmt::format("randomised Hadamard {} (H{} ⊗ random orthogonal {})", n_, p_, m_);
}

void RandomizedHadamard::apply(double* x) const {
  // x·D·(H_p/√p ⊗ R): as a [p, m] matrix X (x[i·m + j]), the result is H_p·X·R/√p (H_p is symmetric).
  for (int64_t i = 0; i < n_; ++i) x[i] *= signs_[static_cast<size_t>(i)];
  if (m_ > 1) {
    std::vector<double> row(static_cast<size_t>(m_));
    for (int64_t i = 0; i < p_; ++i) {
      double* xi = x + i * m_;
      for (int64_t j = 0; j < m_; ++j) {
        double s = 0;
        for (int64_t k = 0; k < m_; ++k) s += xi[k] * r_[static_cast<size_t>(k * m_ + j)];
        row[static_cast<size_t>(j)] = s;
      }
      std::copy(row.begin(), row.end(), xi);
    }
  }
  for (int64_t h = 1; h < p_; h *= 2)
    for (int64_t i = 0; i < p_; i += 2 * h)
      for (int64_t a = i; a < i + h; ++a)
        for (int64_t j = 0; j < m_; ++j) {
          double& u = x[a * m_ + j];
          double& v = x[(a + h) * m_ + j];
          const double s = u + v, d = u - v;
          u = s, v = d;
        }
  const double scale = 1.0 / std::sqrt(static_cast<double>(p_));
  for (int64_t i = 0; i < n_; ++i) x[i] *= scale;
}

std::string rotation_refusal(const Config& c) {
  if (c.norm_kind != NormKind::RmsNorm)
    return "LayerNorm subtracts the mean (and adds a bias), which does not commute with a rotation of the residual "
           "stream; only RMSNorm models can be rotated";
  if (c.norm_placement != NormPlacement::Pre)
    return "its post-norms (attn_post_norm/ffn_post_norm) multiply the residual's increments by a gain after "
           "normalising them, which cannot fold into a linear nor commute with a rotation; only pre-norm models "
           "can be rotated";
  if (c.head_dim <= 0 || c.hidden_size <= 0) return "the description has no head_dim or hidden_size";
  return {};
}

TiedHeadRotation tied_head_rotation_from_name(const std::string& name) {
  if (name == "auto") return TiedHeadRotation::Auto;
  if (name == "untie") return TiedHeadRotation::Untie;
  if (name == "keep") return TiedHeadRotation::Keep;
  throw_error(ErrorKind::Usage, "--rotate-tied '{}': choose auto, untie or keep", name);
}

RotationReport rotate_model(Model& model, const RotationOptions& options) {
  Config& c = model.config;
  if (const std::string why = rotation_refusal(c); !why.empty())
    throw_error(ErrorKind::Usage, "--rotate: {} ({}) cannot be rotated: {}", model.source_path, c.family, why);
  const RandomizedHadamard q(c.hidden_size, options.seed);
  const RandomizedHadamard p(c.head_dim, options.seed + 1);
  RotationReport report;
  report.residual = q.describe();
  if (options.heads) report.head = p.describe();

  // The head first: a tied head is the embedding before it is rotated.
  const Values final_gain = effective_gain(model, names::kFinalNorm);
  double mean = 0;
  for (double g : final_gain) mean += g;
  mean /= static_cast<double>(final_gain.size());
  for (double g : final_gain) report.final_gain_spread = std::max(report.final_gain_spread, std::abs(g - mean) / std::abs(mean));
  report.was_tied = !model.has(names::kLmHead);
  const bool exact_tie = report.final_gain_spread <= 1e-6;
  if (report.was_tied) {
    const bool untie = options.tied == TiedHeadRotation::Untie || (options.tied == TiedHeadRotation::Auto && !exact_tie);
    if (untie) {
      const Tensor& e = model.tensor(names::kEmbedTokens);
      Tensor head = e;
      head.set_name(names::kLmHead);
      model.set(head);
      c.tie_word_embeddings = false;
      report.untied = true;
    } else {
      // Kept tied: the head is E·Q, so the final norm keeps one gain for all channels (its mean).
      set_uniform_gain(model, names::kFinalNorm, mean);
      report.tie_exact = exact_tie;
    }
  }
  if (model.has(names::kLmHead)) {
    rotate_input_side(model, names::kLmHead, final_gain, q);
    set_uniform_gain(model, names::kFinalNorm, 1.0);
  }
  rotate_input_side(model, names::kEmbedTokens, {}, q);
  if (model.has(names::kPositionEmbedding)) rotate_input_side(model, names::kPositionEmbedding, {}, q);

  const bool parallel = c.residual_layout == ResidualLayout::Parallel;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const Values attn_gain = effective_gain(model, names::attn_norm(l));
    set_uniform_gain(model, names::attn_norm(l), 1.0);
    std::vector<std::string> attn_inputs = {names::q_proj(l), names::k_proj(l), names::v_proj(l)};
    std::vector<std::string> mlp_inputs = {names::up_proj(l)};
    if (c.has_gate()) mlp_inputs.insert(mlp_inputs.begin(), names::gate_proj(l));
    for (const auto& n : attn_inputs) rotate_input_side(model, n, attn_gain, q);
    if (parallel) {
      for (const auto& n : mlp_inputs) rotate_input_side(model, n, attn_gain, q);
    } else {
      const Values ffn_gain = effective_gain(model, names::ffn_norm(l));
      set_uniform_gain(model, names::ffn_norm(l), 1.0);
      for (const auto& n : mlp_inputs) rotate_input_side(model, n, ffn_gain, q);
    }

    if (options.heads) {
      const Tensor& v = model.tensor(names::v_proj(l));
      const std::vector<int64_t> shape = v.shape();
      Values w = load(model, names::v_proj(l));
      rotate_head_rows(w, shape[0], shape[1], p, names::v_proj(l));
      store(model, names::v_proj(l), shape, w);
      if (model.has(names::v_bias(l))) {
        const std::vector<int64_t> bshape = model.tensor(names::v_bias(l)).shape();
        Values b = load(model, names::v_bias(l));
        rotate_head_rows(b, bshape[0], 1, p, names::v_bias(l));
        store(model, names::v_bias(l), bshape, b);
      }
    }

    // Output projections: W ← QᵀW (and, per head, o's input columns ← ·P), biases ← Qᵀb.
    for (const auto& n : {names::o_proj(l), names::down_proj(l)}) {
      const Tensor& t = model.tensor(n);
      const std::vector<int64_t> shape = t.shape();
      if (shape[0] != c.hidden_size)
        throw_error(ErrorKind::BadInput, "rotation: {} has {} output rows, the residual stream {}", n, shape[0], c.hidden_size);
      Values w = load(model, n);
      if (options.heads && n == names::o_proj(l)) {
        if (shape[1] % c.head_dim != 0)
          throw_error(ErrorKind::BadInput, "rotation: {} has {} input columns, not whole heads of {}", n, shape[1], c.head_dim);
        rotate_rows(w, shape[0] * shape[1] / c.head_dim, p);  // every head's segment of every row ← ·P
      }
      rotate_columns(w, shape[0], shape[1], q);
      store(model, n, shape, w);
    }
    for (const auto& n : {names::o_bias(l), names::down_bias(l)})
      if (model.has(n)) rotate_input_side(model, n, {}, q);
  }
  spdlog::info("rotated the residual stream ({}){}{}", report.residual,
               options.heads ? fmt::format(" and each head's values ({})", report.head) : std::string(),
               report.was_tied ? (report.untied ? "; untied the output head (final norm gain not uniform)"
                                                : (report.tie_exact ? "; kept the tie (uniform final norm gain)"
                                                                    : "; kept the tie, final norm gain replaced by its mean"))
                               : "");
  return report;
}

}  // namespace slmopt
