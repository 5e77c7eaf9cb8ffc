#include "slmopt/quant/importance.h"

namespace slmopt {

const std::vector<float>* ImportanceMatrix::find(const std::string& weight_name) const {
  auto it = columns.find(weight_name);
  return it == columns.end() ? nullptr : &it->second;
}

namespace {

// Sums in double per column; rows are added in window order and row order, so the result does not depend on
// threads (the observer runs on the calling thread).
class ImportanceCollector : public LinearObserver {
 public:
  void on_linear(const LinearActivation& a) override {
    auto& entry = sums_[a.weight];
    const int64_t cols = a.input.cols();
    if (entry.sum_sq.empty()) entry.sum_sq.assign(static_cast<size_t>(cols), 0.0);
    for (int64_t r = 0; r < a.input.rows(); ++r) {
      const float* row = a.input.data() + r * cols;
      for (int64_t c = 0; c < cols; ++c) entry.sum_sq[static_cast<size_t>(c)] += static_cast<double>(row[c]) * row[c];
    }
    entry.rows += a.input.rows();
  }

  ImportanceMatrix finish() const {
    ImportanceMatrix m;
    for (const auto& [name, e] : sums_) {
      std::vector<float> mean(e.sum_sq.size());
      for (size_t c = 0; c < mean.size(); ++c)
        mean[c] = e.rows ? static_cast<float>(e.sum_sq[c] / static_cast<double>(e.rows)) : 0.0f;
      m.columns[name] = std::move(mean);
      m.tokens = std::max(m.tokens, e.rows);
    }
    return m;
  }

 private:
  struct Entry {
    std::vector<double> sum_sq;
    int64_t rows = 0;
  };
  std::map<std::string, Entry> sums_;
};

}  // namespace

ImportanceMatrix collect_importance(const ModelRunner& runner, const std::vector<std::vector<int32_t>>& windows) {
  ImportanceCollector collector;
  RunOptions options;
  options.observer = &collector;
  runner.for_each_window(windows, [](size_t, const RowMatrix&) {}, options);
  return collector.finish();
}

}  // namespace slmopt
