#include "quant_real_weights.h"

#include <algorithm>

#include "slmopt/exec/model_runner.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"

namespace slmopt::testing {

const RealWeights& llama_5m_kjv() {
  static const RealWeights* weights = [] {
    auto* w = new RealWeights{load_model(model_path("llama-5m-kjv")), {}};
    const Tokenizer tokenizer(w->model.vocab);
    const auto corpus = tokenize_file(tokenizer, data_path("kjv-calib.txt"));
    const auto windows = sample_calibration_windows(corpus, 16, 128, 1234, std::nullopt);
    const ModelRunner runner(w->model);
    w->importance = collect_importance(runner, windows);
    return w;
  }();
  return *weights;
}

std::vector<RealMatrix> real_linear_rows(const RealWeights& weights, int64_t max_rows) {
  std::vector<RealMatrix> out;
  for (const Tensor* t : weights.model.ordered_tensors()) {
    if (!names::is_linear_weight(t->name()) || t->rank() != 2) continue;
    const auto* imp = weights.importance.find(t->name());
    if (!imp) continue;
    RealMatrix m;
    m.name = t->name();
    m.cols = t->cols();
    m.rows = std::min(max_rows, t->rows());
    m.values.resize(static_cast<size_t>(m.rows * m.cols));
    t->rows_to_f32(0, m.rows, m.values.data());
    m.importance = *imp;
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace slmopt::testing
