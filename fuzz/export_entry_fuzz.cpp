// The export header: chrootctl-export.toml, the first member of an export, which import reads
// before anything else (distribution/src/export.cpp). What parses renders back to the same entry.
#include <string>

#include "chrootctl/distribution/export.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chrootctl;
  auto e = distribution::parse_export_entry(std::string(fuzz::text_of(data, size)), "fuzz:chrootctl-export.toml");
  if (!e) return 0;
  auto again = distribution::parse_export_entry(distribution::render_export_entry(*e), "fuzz");
  fuzz::require(again.has_value(), "an export entry that parses renders to text that parses");
  fuzz::require(again->name == e->name && again->recipe == e->recipe && again->build_id == e->build_id && again->digest == e->digest &&
                    again->signer == e->signer && again->aliases == e->aliases && again->exported_at == e->exported_at,
                "an export entry reads back as it was rendered");
  return 0;
}
