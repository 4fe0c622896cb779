// The catalogue file (catalogue/src/catalogue.cpp). What parses must be written back to text that
// parses to the same catalogue: `edit` refuses to write anything else, so a catalogue that broke
// this could no longer be changed.
#include <string>

#include "chrootctl/catalogue/catalogue.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chrootctl;
  auto c = catalogue::parse(std::string(fuzz::text_of(data, size)), "fuzz");
  if (!c) return 0;
  auto again = catalogue::parse(catalogue::serialize(*c), "fuzz");
  fuzz::require(again.has_value(), "a catalogue that parses serialises to text that parses");
  fuzz::require(again->entries == c->entries, "a catalogue reads back as it was written");
  for (const auto& e : c->entries) {
    fuzz::require(c->find_any(e.name) == &e, "find_any finds every entry by its name");
    for (const auto& a : e.aliases) fuzz::require(c->alias_target(a) == &e, "alias_target finds every alias's entry");
  }
  (void)c->suggest("EL9");
  return 0;
}
