// chrootctl resolve NAME [--fast] [--json [--with-seccomp]]
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"
#include "seccomp_choice.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

// The filter a job of this image gets (`run` chooses it the same way), compiled into the cache.
Result<launcher::SeccompPlan> job_filter(const Settings& settings, const std::string& image_policy) {
  auto job = TRY(prepare_job_seccomp(settings, std::nullopt, image_policy));
  // A program in a private scratch cache would be gone when this command exits.
  if (job.scratch) return fail(Errc::unsupported, "--with-seccomp: no state directory to keep the compiled system-call filter in");
  return job.plan;
}

int resolve_main(std::span<char* const> argv) {
  const Spec spec{"resolve",
                  "NAME [--fast] [--store DIR] [--json [--with-seccomp]]",
                  "Print the verified root directory of NAME, or refuse and say why.",
                  "The root is printed only if the image's last full verification passed within\n"
                  "max_verify_age (default 24 h), no verification failed since, and the root is still the\n"
                  "directory that was verified (device, inode, owner, mode), owned by root and unwritable\n"
                  "by anyone else along its whole path. --fast also compares the metadata of every entry\n"
                  "with the stat record (manifest check --fast). Names are case-sensitive; 'root' never\n"
                  "resolves. A sealed image's root is its image file (docs/sealed.md), checked as a whole:\n"
                  "--fast adds nothing for it.\n\n"
                  "--with-seccomp (with --json, for batch-system plugins that install the job's filter\n"
                  "themselves, such as the Slurm plugin): also chooses the image's system-call policy as\n"
                  "'run' would (its catalogue entry's, else the site's), compiles it into the cache under\n"
                  "the state directory if it is not there yet, and prints seccomp_policy, seccomp_digest\n"
                  "and seccomp_program (the compiled program's file; null for the policy none).\n\n"
                  "Exit status: 0 verified (the root is printed), 1 unknown or not verified, 2 error.",
                  {store_option(),
                   json_option(),
                   {"fast", 0, false, false, "", "also run the metadata check of every entry"},
                   {"with-seccomp", 0, false, false, "", "with --json: also the image's compiled system-call filter"}},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  if (a.flag("with-seccomp") && !a.flag("json")) return usage_error(spec, "--with-seccomp needs --json");
  cat::ResolveOptions opts;
  opts.fast = a.flag("fast");
  auto r = cat::resolve(*settings, a.positional[0], opts);
  if (!r) {
    report(r.error());
    return cat::is_refusal(r.error()) ? k_failed_check : k_error;
  }
  if (a.flag("json")) {
    std::optional<launcher::SeccompPlan> seccomp;
    if (a.flag("with-seccomp")) {
      auto plan = job_filter(*settings, r->seccomp);
      if (!plan) return report(plan.error());
      seccomp = std::move(*plan);
    }
    JsonWriter w;
    w.begin_object();
    w.field("name", r->requested);
    w.field("entry", r->name);
    w.field("root", escape_bytes(r->root));
    w.field("image", escape_bytes(r->image));
    w.field("digest", r->version.digest);
    w.field("build_id", r->version.build_id);
    w.field("verified_at", r->version.verified_at);
    w.key("signer");
    if (r->version.signer.empty()) w.null();
    else w.value(r->version.signer);
    // Where a launch of this image is recorded, for launchers that read no configuration (the
    // Slurm plugin): null when accounting is off.
    w.key("accounting_log");
    if (settings->accounting.enabled) w.value(settings->accounting.path);
    else w.null();
    w.field("accounting_max_bytes", settings->accounting.max_bytes);
    w.field("accounting_keep", settings->accounting.keep);
    // A sealed image's root is its image file; launches mount it ('chrootctl mount').
    w.field("sealed", r->version.sealed.has_value());
    if (seccomp) {
      w.field("seccomp_policy", seccomp->policy);
      w.key("seccomp_digest");
      if (seccomp->digest.empty()) w.null();
      else w.value(seccomp->digest);
      w.key("seccomp_program");
      if (seccomp->program.empty()) w.null();
      else w.value(escape_bytes(seccomp->program));
    }
    w.end_object();
    out(w.str());
  } else {
    out(r->root + "\n");
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("resolve", "print the verified root of a name, or refuse", resolve_main);

}  // namespace chrootctl::cli
