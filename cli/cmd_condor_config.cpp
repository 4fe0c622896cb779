// chrootctl condor-config [--wrapper --wrapper-script FILE] [-o FILE]
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>

#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

// The chrootctl front binary that the wrapper script runs: beside this tool in a build tree,
// PREFIX/bin/chrootctl when this tool is PREFIX/libexec/chrootctl/chrootctl-full.
Result<std::string> front_binary() {
  auto self = sys::readlink_at(AT_FDCWD, "/proc/self/exe");
  if (!self || self->empty()) return fail(Errc::io, "cannot read /proc/self/exe to find the chrootctl binary");
  const std::string& exe = *self;
  const std::string dir = exe.substr(0, exe.find_last_of('/') + 1);
  for (const std::string& candidate : {dir + "chrootctl", dir + "../../bin/chrootctl"}) {
    if (!sys::access_path(candidate, X_OK)) continue;
    if (auto real = sys::realpath(candidate)) return *real;
  }
  return fail(Errc::not_found, str("the chrootctl binary is not installed beside ", exe));
}

void print_skipped(const std::vector<cat::CondorConfig::Skipped>& skipped) {
  for (const auto& s : skipped) err(str("chrootctl: warning: leaving out ", s.name, ": ", s.reason, "\n"));
}

void write_skipped(JsonWriter& w, const std::vector<cat::CondorConfig::Skipped>& skipped) {
  w.key("skipped").begin_array();
  for (const auto& s : skipped) {
    w.begin_object();
    w.field("name", s.name);
    w.field("reason", s.reason);
    w.end_object();
  }
  w.end_array();
}

int wrapper_main(const Args& a, const Settings& settings) {
  const auto script_path = a.value("wrapper-script");
  auto binary = front_binary();
  if (!binary) return report(binary.error());
  auto r = cat::condor_wrapper_config(settings, *binary, *script_path);
  if (!r) return report(r.error());
  print_skipped(r->skipped);
  // The script runs as every job's user: root's, readable and executable by all, writable by none.
  if (auto w = write_file_atomic(*script_path, r->script, 0755); !w) return report(w.error());
  if (auto o = a.value("output")) {
    if (auto w = write_file_atomic(*o, r->text, 0644); !w) return report(w.error());
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("user_job_wrapper", *script_path);
    w.field("chrootctl", *binary);
    w.field("named_chroot", r->named_chroot);
    w.key("included").begin_array();
    for (const auto& n : r->included) w.value(n.name);
    w.end_array();
    write_skipped(w, r->skipped);
    w.end_object();
    out(w.str());
  } else if (!a.value("output")) {
    out(r->text);
  }
  return k_ok;
}

int condor_config_main(std::span<char* const> argv) {
  const Spec spec{"condor-config",
                  "[--wrapper --wrapper-script FILE] [-o FILE] [--store DIR] [--json]",
                  "Print the HTCondor configuration for the verified catalogue entries.",
                  "HTCondor 25.0 LTS and older: 'NAMED_CHROOT = NAME=/path/root, NAME2=/path2/root', ready for\n"
                  "/etc/condor/config.d/.\n\n"
                  "HTCondor 25.5 and later (--wrapper): USER_JOB_WRAPPER runs every job through\n"
                  "'chrootctl condor-wrapper', which starts a job whose ad sets RequestedChroot in that root and\n"
                  "any other job unchanged; 'NamedChroot = \"NAME, NAME2\"' with STARTD_ATTRS lets jobs match\n"
                  "with requirements = stringListMember(\"NAME\", NamedChroot). USER_JOB_WRAPPER takes one\n"
                  "executable and no arguments, so --wrapper-script FILE is written (mode 0755): a two-line\n"
                  "script that runs this chrootctl's condor-wrapper with this store.\n\n"
                  "-o writes the configuration atomically, so HTCondor never reads half a file. Entries that\n"
                  "are not verified now are left out with a warning on stderr; aliases are listed as names of\n"
                  "their own. 'root' is never listed.\n\n"
                  "Exit status: 0 written (even if some entries were left out), 2 error.",
                  {store_option(),
                   json_option(),
                   {"output", 'o', true, false, "FILE", "write to FILE (atomically) instead of stdout"},
                   {"wrapper", 0, false, false, "", "print the configuration for HTCondor 25.5 and later (USER_JOB_WRAPPER)"},
                   {"wrapper-script", 0, true, false, "FILE", "with --wrapper: write the USER_JOB_WRAPPER script to FILE"}},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  if (a.flag("wrapper") && !a.value("wrapper-script"))
    return usage_error(spec,
                       "--wrapper needs --wrapper-script FILE (USER_JOB_WRAPPER names one executable and takes no "
                       "arguments, so chrootctl writes a script there that runs 'chrootctl condor-wrapper')");
  if (!a.flag("wrapper") && a.value("wrapper-script")) return usage_error(spec, "--wrapper-script goes with --wrapper");
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  if (a.flag("wrapper")) return wrapper_main(a, *settings);
  auto r = cat::condor_config(*settings);
  if (!r) return report(r.error());
  print_skipped(r->skipped);
  if (auto o = a.value("output")) {
    if (auto w = write_file_atomic(*o, r->text, 0644); !w) return report(w.error());
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    std::string line = r->text.substr(r->text.rfind("NAMED_CHROOT"));
    if (!line.empty() && line.back() == '\n') line.pop_back();
    w.field("named_chroot", line);
    w.key("included").begin_array();
    for (const auto& n : r->included) {
      w.begin_object();
      w.field("name", n.name);
      w.field("root", escape_bytes(n.path));
      w.end_object();
    }
    w.end_array();
    write_skipped(w, r->skipped);
    w.end_object();
    out(w.str());
  } else if (!a.value("output")) {
    out(r->text);
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("condor-config", "print HTCondor's NAMED_CHROOT, or with --wrapper the 25.5+ configuration", condor_config_main);

}  // namespace chrootctl::cli
