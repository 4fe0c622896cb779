// The manifest parser (common/src/manifest.cpp), on the input as it is and on the input with
// its end line made to fit its entries, so that mutations also reach what is checked only once
// the digest matches: the strip records of a stripped manifest, leading back to the digest
// they name.
#include <string>

#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "fuzz.hpp"

namespace {

using namespace chrootctl;
using fuzz::require;

// The input's lines with its end lines replaced by one that holds the count and digest of its
// entries (each entry line without its mtime field, as the digest takes it; header lines as
// they are). An unterminated last line is kept: the parser must refuse it.
std::string sealed(std::string_view text) {
  std::string out;
  Sha256 h;
  std::size_t entries = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) break;
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.starts_with("#end ")) continue;
    out.append(line).push_back('\n');
    if (line.starts_with("#")) {
      h.update(line);
    } else {
      ++entries;
      const auto mtime = line.rfind(" mtime=");
      h.update(line.substr(0, mtime));
    }
    h.update("\n");
  }
  out += str("#end entries=", entries, " sha256=", h.hex_final(), "\n");
  out.append(text.substr(pos));
  return out;
}

void check(const std::string& text) {
  auto m = manifest::parse(text, "fuzz");
  if (!m) return;
  // Only the canonical text parses: the manifest it yields is written back byte for byte.
  require(manifest::serialize(*m) == text, "a manifest that parses serialises to its own text");
  auto original = manifest::original_digest(*m);
  require(original.has_value(), "a manifest that parses leads back to the digest it was signed with");
  require(m->stripped_from.empty() ? *original == manifest::digest(*m) : *original == m->stripped_from,
          "original_digest is the digest, or the one a stripped manifest names");
  for (const auto& e : m->entries) {
    (void)manifest::privilege_of(e);
    require(m->find(e.path) == &e, "find returns each entry");
  }
  require(manifest::diff(*m, *m).differences.empty(), "a manifest does not differ from itself");
  (void)manifest::to_mtree(*m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::text_of(data, size);
  check(std::string(text));
  check(sealed(text));
  return 0;
}
