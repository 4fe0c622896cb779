// chrootctl gc [--dry-run] [--keep N] [--min-age DURATION]
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

// "90", "90s", "30m", "2h", "7d" -> seconds.
std::optional<std::int64_t> parse_duration(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::int64_t unit = 1;
  std::string digits = s;
  switch (s.back()) {
    case 's':
      unit = 1;
      digits.pop_back();
      break;
    case 'm':
      unit = 60;
      digits.pop_back();
      break;
    case 'h':
      unit = 3600;
      digits.pop_back();
      break;
    case 'd':
      unit = 86400;
      digits.pop_back();
      break;
    default:
      break;
  }
  auto n = parse_u64(digits);
  if (!n || *n > static_cast<std::uint64_t>(INT64_MAX / unit)) return std::nullopt;
  return static_cast<std::int64_t>(*n) * unit;
}

int gc_main(std::span<char* const> argv) {
  const Spec spec{"gc",
                  "[--dry-run] [--keep N] [--min-age DURATION] [--store DIR] [--json]",
                  "Delete build directories in the store that no catalogue entry refers to.",
                  "A build directory is STORE/NAME/BUILD-ID holding a manifest; it is kept while the current\n"
                  "or a previous version of any entry refers to it, or while it was modified less than\n"
                  "--min-age ago (default 1h: a build not registered yet). --keep N first drops all but the\n"
                  "N newest previous versions of every entry (a running job may still use one: choose N\n"
                  "with care). Deletion never crosses a mount point and never leaves the store.\n\n"
                  "Exit status: 0 done, 2 error (some directories could not be removed).",
                  {store_option(),
                   json_option(),
                   {"dry-run", 'n', false, false, "", "only list what would be removed"},
                   {"keep", 0, true, false, "N", "keep at most N previous versions per entry"},
                   {"min-age", 0, true, false, "DURATION", "spare directories modified more recently (e.g. 30m, 2h, 1d; default 1h)"}},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  cat::GcOptions opts;
  opts.dry_run = a.flag("dry-run");
  if (auto k = a.value("keep")) {
    auto n = parse_u64(*k);
    if (!n || *n > 1000000) return usage_error(spec, str("bad --keep ", quote(*k)));
    opts.keep = static_cast<std::size_t>(*n);
  }
  if (auto m = a.value("min-age")) {
    auto d = parse_duration(*m);
    if (!d) return usage_error(spec, str("bad --min-age ", quote(*m), " (e.g. 90s, 30m, 2h, 1d)"));
    opts.min_age = *d;
  }
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto r = cat::gc(*settings, opts);
  if (!r) return report(r.error());
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("dry_run", opts.dry_run);
    w.key("trimmed").begin_array();
    for (const auto& t : r->trimmed) {
      w.begin_object();
      w.field("name", t.name);
      w.field("build_id", t.build_id);
      w.field("image", escape_bytes(t.image));
      w.end_object();
    }
    w.end_array();
    auto list = [&](const char* key, const std::vector<std::string>& v) {
      w.key(key).begin_array();
      for (const auto& x : v) w.value(escape_bytes(x));
      w.end_array();
    };
    list("removed", r->removed);
    list("too_new", r->too_new);
    list("errors", r->errors);
    w.end_object();
    out(w.str());
  } else {
    const std::string verb = opts.dry_run ? "would remove" : "removed";
    for (const auto& t : r->trimmed) out(str("dropped previous version ", t.build_id, " of ", t.name, "\n"));
    for (const auto& x : r->removed) out(str(verb, " ", escape_bytes(x), "\n"));
    for (const auto& x : r->too_new) out(str("kept ", escape_bytes(x), " (modified less than --min-age ago)\n"));
    out(str(r->removed.size(), opts.dry_run ? " build directories would be removed\n" : " build directories removed\n"));
  }
  for (const auto& e : r->errors) report(e);
  return r->errors.empty() ? k_ok : k_error;
}

}  // namespace

CHROOTCTL_VERB("gc", "delete build directories no catalogue entry refers to", gc_main);

}  // namespace chrootctl::cli
