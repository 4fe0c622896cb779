// Text and JSON views of catalogue entries.
#include "chrootctl/catalogue/report.hpp"

#include <algorithm>

#include "chrootctl/common/strings.hpp"

namespace chrootctl::catalogue {

namespace {

std::string age(std::int64_t t, std::int64_t now) {
  if (t == 0) return "never";
  return str(format_duration(now - t), " ago");
}

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

void write_json(JsonWriter& w, const Version& v) {
  w.begin_object();
  w.field("image", escape_bytes(v.image));
  w.field("root", escape_bytes(v.root));
  w.field("digest", v.digest);
  if (!v.signed_digest.empty()) w.field("signed_digest", v.signed_digest);
  w.field("build_id", v.build_id);
  w.field("recipe", v.recipe);
  w.field("signer", v.signer);
  w.field("added_at", v.added_at);
  w.field("verified_at", v.verified_at);
  w.field("verified_at_iso", v.verified_at ? format_time(v.verified_at) : "");
  w.field("failed_at", v.failed_at);
  w.field("failure", v.failure);
  w.key("identity").begin_object();
  w.field("dev", v.identity.dev);
  w.field("ino", v.identity.ino);
  w.field("uid", v.identity.uid);
  w.field("gid", v.identity.gid);
  w.field("mode", mode_octal(v.identity.mode));
  w.end_object();
  w.key("sealed");
  if (v.sealed) {
    w.begin_object();
    w.field("format", v.sealed->format);
    w.field("size", v.sealed->size);
    w.field("sha256", v.sealed->sha256);
    w.field("root_hash", v.sealed->root_hash);
    w.end_object();
  } else {
    w.null();
  }
  w.end_object();
}

void write_json(JsonWriter& w, const Entry& e, const Evaluation& ev) {
  w.begin_object();
  w.field("name", e.name);
  w.key("aliases").begin_array();
  for (const auto& a : e.aliases) w.value(a);
  w.end_array();
  w.field("state", ev.state);
  w.field("usable", ev.usable);
  w.field("reason", ev.reason);
  w.key("seccomp");
  if (e.seccomp.empty()) w.null();
  else w.value(escape_bytes(e.seccomp));
  w.key("current");
  write_json(w, e.current);
  w.key("previous").begin_array();
  for (const auto& p : e.previous) write_json(w, p);
  w.end_array();
  w.end_object();
}

void write_json(JsonWriter& w, const VerifyReport& r) {
  w.begin_object();
  w.field("name", r.name);
  w.field("image", escape_bytes(r.version.image));
  w.field("root", escape_bytes(r.version.root));
  w.field("digest", r.version.digest);
  w.field("fast", r.fast);
  w.field("passed", r.passed);
  w.field("error", r.error);
  w.field("entries", static_cast<std::uint64_t>(r.entries));
  w.field("recorded", r.recorded);
  w.key("notes").begin_array();
  for (const auto& n : r.notes) w.value(n);
  w.end_array();
  w.key("differences");
  manifest::write_json(w, r.differences);
  w.end_object();
}

std::string render_list(const Settings& s, const Catalogue& c, std::int64_t now) {
  if (c.entries.empty()) return "";
  std::vector<std::vector<std::string>> rows{{"NAME", "STATE", "VERIFIED", "BUILD", "DIGEST", "ROOT"}};
  for (const auto& e : c.entries) {
    const auto ev = evaluate(s, e.name, e.aliases, e.current, now);
    rows.push_back(
        {e.name, ev.state, age(e.current.verified_at, now), e.current.build_id, e.current.digest.substr(0, 12), escape_bytes(e.current.root)});
    for (const auto& a : e.aliases) rows.push_back({a, "-> " + e.name, "", "", "", ""});
  }
  return table(rows);
}

std::string render_show(const Entry& e, const Evaluation& ev, std::int64_t now) {
  auto version = [&](const Version& v, const std::string& indent) {
    std::string out;
    out += str(indent, "build:     ", v.build_id, v.recipe.empty() ? std::string() : str(" (recipe ", v.recipe, ")"), "\n");
    out += str(indent, "image:     ", escape_bytes(v.image), "\n");
    out += str(indent, "root:      ", escape_bytes(v.root), "\n");
    out += str(indent, "digest:    sha256:", v.digest, "\n");
    if (!v.signer.empty()) out += str(indent, "signer:    ", v.signer, "\n");
    out += str(indent, "added:     ", format_time(v.added_at), "\n");
    out += str(indent, "verified:  ", format_time(v.verified_at), v.verified_at ? str(" (", age(v.verified_at, now), ")") : "", "\n");
    if (v.failed_at) out += str(indent, "failed:    ", format_time(v.failed_at), ": ", v.failure, "\n");
    out += str(indent, "identity:  ", describe(v.identity), "\n");
    if (v.sealed)
      out += str(indent, "sealed:    ", v.sealed->format, ", ", human_size(v.sealed->size), ", sha256:", v.sealed->sha256, ", verity root hash ",
                 v.sealed->root_hash, "\n");
    return out;
  };
  std::string out = str("name:      ", e.name, "\n");
  if (!e.aliases.empty()) out += str("aliases:   ", join(e.aliases, ", "), "\n");
  out += str("state:     ", ev.state, ev.usable ? std::string() : str(" (", ev.reason, ")"), "\n");
  if (!e.seccomp.empty())
    out += str("seccomp:   ", escape_bytes(e.seccomp), e.seccomp == "none" ? " (jobs run without a system-call filter)" : "", "\n");
  out += version(e.current, "");
  for (std::size_t i = 0; i < e.previous.size(); ++i) {
    out += str("previous ", i + 1, ":\n");
    out += version(e.previous[i], "  ");
  }
  return out;
}

}  // namespace chrootctl::catalogue
