// Recipes (builder/src/recipe.cpp): TOML, every key checked, errors at file:line:col.
#include <string>

#include "chrootctl/builder/recipe.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chrootctl;
  // Relative `path` and `src` values are resolved against the directory given, never opened.
  (void)builder::parse_recipe(std::string(fuzz::text_of(data, size)), "recipes/fuzz.toml", "/nonexistent/recipes");
  return 0;
}
