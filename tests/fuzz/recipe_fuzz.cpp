// Recipes (YAML): parsed and checked against the stage option tables; nothing is loaded or written.
#include "fuzz_target.h"
#include "slmopt/pipeline/recipe.h"

using namespace slmopt;

SLMOPT_FUZZ_TARGET(recipe) {
  const std::string path = fuzz::write_scratch("recipe.yaml", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] { (void)pipeline::parse_recipe(path, ""); });
  return 0;
}
