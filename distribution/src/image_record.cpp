#include "image_record.hpp"

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/strings.hpp"

namespace chrootctl::distribution::detail {

ImageRecord read_image_record(TableReader& r, const toml::table& table, std::string_view kind, std::int64_t format) {
  Diagnostics& diag = r.diagnostics();
  ImageRecord out;
  if (auto f = r.integer("format", true); f && *f != format)
    diag.error(*table.get("format"), str("unsupported ", kind, " format ", *f, " (this chrootctl reads format ", format, ")"));
  if (auto v = r.string("name", true)) {
    out.name = *v;
    if (auto why = catalogue::invalid_name(out.name)) diag.error(*table.get("name"), str("bad name: ", *why));
  }
  if (auto v = r.string("recipe", true)) {
    out.recipe = *v;
    if (!catalogue::valid_word(out.recipe)) diag.error(*table.get("recipe"), "'recipe' must be a recipe name");
  }
  if (auto v = r.string("build_id", true)) {
    out.build_id = *v;
    if (!catalogue::valid_word(out.build_id)) diag.error(*table.get("build_id"), "'build_id' must be a build id");
  }
  if (auto v = r.string("digest", true)) {
    out.digest = *v;
    if (!is_sha256_hex(out.digest)) diag.error(*table.get("digest"), "'digest' must be 64 lowercase hex digits");
  }
  if (auto v = r.string("signer")) out.signer = *v;
  return out;
}

}  // namespace chrootctl::distribution::detail
