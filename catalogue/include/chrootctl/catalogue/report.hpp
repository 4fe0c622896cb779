#pragma once
/// How catalogue entries are shown: the text tables of `list` and `show` and their JSON form,
/// shared by the verbs so that every listing has the same fields.

#include <cstdint>
#include <string>
#include <vector>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/json.hpp"

namespace chrootctl::catalogue {

/// A version as a JSON object: image, root, digest, build_id, recipe, signer, added_at,
/// verified_at (unix seconds and ISO 8601), failed_at, failure, identity.
void write_json(JsonWriter& w, const Version& v);
/// An entry with its state: name, aliases, state, usable, reason, current, previous.
void write_json(JsonWriter& w, const Entry& e, const Evaluation& ev);
/// One verification: name, image, root, fast, passed, error, entries, recorded, notes, differences.
void write_json(JsonWriter& w, const VerifyReport& r);

/// The `list` table: NAME STATE VERIFIED BUILD DIGEST ROOT, one line per entry, aliases as
/// "ALIAS -> NAME" lines after it.
std::string render_list(const Settings& s, const Catalogue& c, std::int64_t now);
/// Everything about one entry, for `show`.
std::string render_show(const Entry& e, const Evaluation& ev, std::int64_t now);

}  // namespace chrootctl::catalogue
