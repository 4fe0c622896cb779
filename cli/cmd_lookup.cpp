// chrootctl lookup FILE
#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

constexpr int k_no_request = 3;

int lookup_main(std::span<char* const> argv) {
  const Spec spec{"lookup",
                  "FILE [--job-ad] [--fast] [--store DIR] [--json]",
                  "Find the root a job asks for in an HTCondor submit file or job ClassAd, and resolve it.",
                  "FILE is a submit file (+RequestedChroot = \"NAME\", My.RequestedChroot = \"NAME\") or a\n"
                  "job ClassAd such as $_CONDOR_JOB_AD (RequestedChroot = \"NAME\"). Attribute names are\n"
                  "case-insensitive, the value is used exactly; comments, blank lines and continuation\n"
                  "lines are understood and the last assignment wins. Prints 'NAME ROOT'. A value that is\n"
                  "not a plain string literal, an empty name or 'root' is refused: a job is never sent to\n"
                  "the host's root.\n\n"
                  "--job-ad reads FILE as HTCondor's job wrapper does: by the ClassAd file rules (one\n"
                  "attribute per line, no continuation lines), refusing a line that mentions\n"
                  "RequestedChroot but cannot be read, and two different RequestedChroot values.\n\n"
                  "Exit status: 0 the name resolves to a verified root, 1 it is unknown, not verified or\n"
                  "invalid, 2 error, 3 the file requests no root.",
                  {store_option(),
                   json_option(),
                   {"fast", 0, false, false, "", "also run the metadata check (as resolve --fast)"},
                   {"job-ad", 0, false, false, "", "FILE is a job ClassAd: ClassAd file rules, fail-closed (as condor-wrapper reads it)"}},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  cat::ResolveOptions opts;
  opts.fast = a.flag("fast");
  auto r = a.flag("job-ad") ? cat::lookup_ad(*settings, a.positional[0], opts) : cat::lookup(*settings, a.positional[0], opts);
  if (!r) return report(r.error());
  const int rc = !r->request.present ? k_no_request : r->resolved ? k_ok : k_failed_check;
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("file", a.positional[0]);
    w.field("requested", r->request.present);
    if (r->request.present) {
      w.field("attribute", r->request.attribute);
      w.field("line", static_cast<std::uint64_t>(r->request.line));
      w.field("name", r->request.name);
    }
    w.field("verified", r->resolved.has_value());
    if (r->resolved) {
      w.field("entry", r->resolved->name);
      w.field("root", escape_bytes(r->resolved->root));
    }
    w.field("reason", r->reason);
    w.end_object();
    out(w.str());
    return rc;
  }
  if (rc == k_no_request) {
    err(str("chrootctl: ", a.positional[0], " requests no root (no RequestedChroot)\n"));
  } else if (rc == k_ok) {
    out(str(r->request.name, " ", r->resolved->root, "\n"));
  } else {
    report(r->reason);
  }
  return rc;
}

}  // namespace

CHROOTCTL_VERB("lookup", "find and resolve the root a submit file or job ClassAd asks for", lookup_main);

}  // namespace chrootctl::cli
