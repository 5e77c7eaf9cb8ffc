#include "slmopt/exec/generate.h"

#include "slmopt/core/error.h"
#include "slmopt/exec/log_softmax.h"

namespace slmopt {

std::vector<int32_t> generate_greedy(const ModelRunner& runner, std::span<const int32_t> prompt,
                                     int64_t max_new_tokens, std::optional<int32_t> stop_token) {
  if (prompt.empty()) throw_error(ErrorKind::Usage, "greedy generation needs at least one prompt token");
  std::vector<int32_t> generated;
  if (max_new_tokens <= 0) return generated;
  KvCache cache = runner.make_cache(static_cast<int64_t>(prompt.size()) + max_new_tokens);
  RowMatrix logits = runner.decode(cache, prompt);
  for (;;) {
    const int32_t next = argmax(row_span(logits, logits.rows() - 1));
    generated.push_back(next);
    if ((stop_token && next == *stop_token) || static_cast<int64_t>(generated.size()) >= max_new_tokens) break;
    const int32_t input[1] = {next};
    logits = runner.decode(cache, input);
  }
  return generated;
}

}  // namespace slmopt
