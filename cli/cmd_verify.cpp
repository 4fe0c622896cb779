// chrootctl verify NAME...|--all [--fast]
#include <optional>

#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/report.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int verify_main(std::span<char* const> argv) {
  const Spec spec{"verify",
                  "NAME...|--all [--fast] [--store DIR] [--json]",
                  "Re-check images against their manifests, list every difference and record the result.",
                  "A full verification re-hashes the whole tree. When it passes, the image may be resolved\n"
                  "for another max_verify_age (default 24 h) and its stat record is rewritten. Any failure\n"
                  "(a difference, a root no longer owned by root or writable by others, a changed manifest)\n"
                  "is recorded and makes the image unusable until a full verification passes again.\n"
                  "--fast compares only metadata (type, mode, owner, size, inode, ctime) with the stat\n"
                  "record; it records failures but a pass does not renew the verification.\n\n"
                  "Exit status: 0 every image passed, 1 some failed (or a NAME is unknown), 2 error.",
                  {store_option(),
                   json_option(),
                   {"all", 0, false, false, "", "verify every entry"},
                   {"fast", 0, false, false, "", "metadata only, against the stat record"},
                   threads_option(),
                   quiet_option()},
                  0,
                  1000};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  if (a.flag("all") == !a.positional.empty()) return usage_error(spec, "give either NAME... or --all");
  cat::VerifyOptions opts;
  opts.fast = a.flag("fast");
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  opts.sealed_tree = sealed_tree_check(*settings, opts.threads);
  std::optional<ProgressLine> line;
  line.emplace("verifying", a.flag("quiet") || a.flag("json") || opts.fast);
  opts.progress = [&line](const manifest::Progress& p) {
    line->update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
  };
  auto r = cat::verify(*settings, a.positional, opts);
  line.reset();
  if (!r) {
    report(r.error());
    return r.error().code() == Errc::not_found ? k_failed_check : k_error;
  }
  bool all_passed = true;
  for (const auto& x : *r) all_passed = all_passed && x.passed;
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("fast", opts.fast);
    w.field("passed", all_passed);
    w.key("images").begin_array();
    for (const auto& x : *r) cat::write_json(w, x);
    w.end_array();
    w.end_object();
    out(w.str());
  } else {
    for (const auto& x : *r) {
      std::string text = manifest::render_text(x.differences);
      std::string prefixed;
      for (const auto& l : split(text, '\n'))
        if (!l.empty()) prefixed += str(x.name, ": ", l, "\n");
      out(prefixed);
      const std::string kind = x.fast ? "metadata check" : "full verification";
      if (x.passed) {
        out(str(x.name, ": ", kind, " passed (", x.entries, " entries, build ", x.version.build_id, ")\n"));
      } else {
        std::size_t n = 0;
        for (const auto& d : x.differences.differences) n += d.kind != manifest::Difference::Kind::mtime_only;
        std::string why = !x.error.empty() ? x.error : str(n, n == 1 ? " difference" : " differences");
        out(str(x.name, ": ", kind, " FAILED: ", why, "\n"));
        if (x.recorded) out(str(x.name, ": marked unusable until 'chrootctl verify ", x.name, "' passes\n"));
      }
      for (const auto& n : x.notes) out(str(x.name, ": note: ", n, "\n"));
    }
  }
  return all_passed ? k_ok : k_failed_check;
}

}  // namespace

CHROOTCTL_VERB("verify", "re-check images against their manifests and record the result", verify_main);

}  // namespace chrootctl::cli
