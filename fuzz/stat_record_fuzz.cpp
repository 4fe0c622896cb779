// The stat record beside a manifest (MANIFEST.stat, binary; common/src/manifest.cpp), which every
// fast check loads.
#include <cstring>
#include <string>

#include "chrootctl/common/manifest.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chrootctl;
  auto r = manifest::parse_stat(fuzz::text_of(data, size), "fuzz");
  if (!r) return 0;
  for (const auto& item : r->items) {
    // Each path ends inside the path table (ASan would see a read past it).
    const char* p = r->relative_path(item);
    fuzz::require(p >= r->paths.data() && p + std::strlen(p) < r->paths.data() + r->paths.size(), "every item's path lies inside the path table");
  }
  fuzz::require(r->entries().size() == r->items.size(), "one entry per item");
  return 0;
}
