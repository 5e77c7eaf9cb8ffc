// config.json: every family's keys into a validated Config, then the canonical tensor list it implies (what a
// loader enumerates before it looks at any weight).
#include "fuzz_target.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/decoder_tensors.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(hf_config) {
  fuzz::expect_clean_error([&] {
    const Config config = parse_hf_config(std::string(fuzz::as_text(data, size)), "config.json");
    (void)decoder_tensors(config);
  });
  return 0;
}
