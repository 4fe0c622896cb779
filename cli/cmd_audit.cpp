// chrootctl audit NAME|BUILD-DIR...|--all [--policy FILE] [--json] [--severity LEVEL]
#include "chrootctl/audit/audit.hpp"
#include "chrootctl/audit/policy.hpp"
#include "chrootctl/audit/target.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/sealed.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

int audit_main(std::span<char* const> argv) {
  const Spec spec{"audit",
                  "NAME|BUILD-DIR...|--all [--policy FILE] [--json] [--severity LEVEL]",
                  "Audit images for what could hurt the site, and gate a rollout on the answer.",
                  "Checks setuid and setgid files, file capabilities, writable paths, device nodes, owners,\n"
                  "accounts, secrets, build-host leftovers, execution hooks, symlinks and drift from the\n"
                  "manifest, and lists the installed packages (docs/audit.md lists every check).\n"
                  "Each argument is a catalogue name or a build directory (holding root/ and manifest); --all audits\n"
                  "every catalogue entry. The policy is FILE, else $CHROOTCTL_AUDIT_POLICY, else\n"
                  "/etc/chrootctl/audit.toml if it exists, else the built-in policy (docs/audit.md).\n"
                  "Exit status: 0 no finding at or above the --severity gate (default: low), 1 findings at or\n"
                  "above it, 2 error.",
                  {{"all", 0, false, false, "", "audit every image in the catalogue"},
                   {"policy", 0, true, false, "FILE", "site policy (default: /etc/chrootctl/audit.toml)"},
                   {"severity", 0, true, false, "LEVEL", "gate: info, low (default), medium or high"},
                   json_option(),
                   store_option(),
                   threads_option(),
                   quiet_option()},
                  0,
                  1024};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  const bool all = a.flag("all");
  if (all && !a.positional.empty()) return usage_error(spec, "give image names or --all, not both");
  if (!all && a.positional.empty()) return usage_error(spec, "missing argument: an image name, a build directory or --all");
  const std::string gate_text = a.value("severity").value_or("low");
  const auto gate = audit::parse_severity(gate_text);
  if (!gate) return usage_error(spec, str("unknown severity ", quote(gate_text), " (info, low, medium or high)"));
  audit::Options opts;
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;

  // A --store that is not there is an error, not an empty catalogue.
  if (auto s = load_existing_store_settings(a); !s) return report(s.error());
  auto policy = audit::load_site_policy(a.value("policy"));
  if (!policy) return report(policy.error());

  // With --all the catalogue names the targets; otherwise each argument is resolved in turn, so
  // that an unknown name is reported and the other images are still audited.
  std::vector<audit::Target> listed;
  if (all) {
    auto l = audit::catalogue_targets(a.value("store"));
    if (!l) return report(l.error());
    if (l->empty()) return report("the catalogue has no images to audit");
    listed = std::move(*l);
  }
  const std::size_t count = all ? listed.size() : a.positional.size();

  const bool json = a.flag("json");
  std::vector<audit::ImageResult> results;
  bool error = false;
  for (std::size_t i = 0; i < count; ++i) {
    audit::ImageResult res;
    res.label = all ? listed[i].label : a.positional[i];
    auto target = all ? Result<audit::Target>(listed[i]) : audit::resolve_target(a.positional[i], a.value("store"));
    if (!target) {
      res.error = std::move(target.error());
    } else {
      ProgressLine line(str("auditing ", target->label), a.flag("quiet") || json);
      opts.progress = [&line](const manifest::Progress& p) {
        line.update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
      };
      // A sealed image is audited through its mount (docs/sealed.md).
      std::optional<launcher::sealed::Share> mount;
      Result<audit::Report> r = fail(Errc::internal, "not audited");
      if (target->sealed) {
        auto settings = load_existing_store_settings(a);
        auto m = settings ? mount_for_reading(*settings, target->sealed_file, *target->sealed)
                          : Result<launcher::sealed::Share>(fail(std::move(settings.error())));
        if (m) {
          mount.emplace(std::move(*m));
          target->root = mount->root();
        } else {
          r = fail(std::move(m.error()).add_context(str("auditing the sealed image ", target->label)));
        }
      }
      if (!target->sealed || mount) r = audit::audit(*target, *policy, opts);
      opts.progress = nullptr;
      if (r) {
        line.done(str(r->entries, " entries"));
        res.report = std::move(*r);
      } else {
        res.error = std::move(r.error());
      }
    }
    if (res.error) {
      error = true;
      report(*res.error);
    } else if (!json) {
      if (!results.empty()) out("\n");
      out(audit::render_text(*res.report));
    }
    results.push_back(std::move(res));
  }

  bool failed = false;
  for (const auto& r : results) failed = failed || (r.report && r.report->fails(*gate));
  if (json) {
    out(audit::render_json(results, *gate, policy->source));
  } else if (results.size() > 1) {
    std::uint64_t n[4] = {};
    std::size_t errors = 0;
    for (const auto& r : results) {
      if (!r.report) {
        ++errors;
        continue;
      }
      for (auto s : {audit::Severity::info, audit::Severity::low, audit::Severity::medium, audit::Severity::high})
        n[static_cast<int>(s)] += r.report->count(s);
    }
    out(str("\n", results.size(), " images: ", n[3], " high, ", n[2], " medium, ", n[1], " low, ", n[0], " info",
            errors ? str("; ", errors, " could not be audited") : "", "\n"));
  }
  if (error) return k_error;
  return failed ? k_failed_check : k_ok;
}

}  // namespace

CHROOTCTL_VERB("audit", "audit images for privileged files, secrets, leftovers and drift", audit_main);

}  // namespace chrootctl::cli
