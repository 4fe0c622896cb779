// chrootctl condor-config [-o FILE]
#include <cstdio>

#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int condor_config_main(std::span<char* const> argv) {
  const Spec spec{
      "condor-config",
      "[-o FILE] [--store DIR] [--json]",
      "Print an HTCondor NAMED_CHROOT setting for the verified catalogue entries.",
      "The output ('NAMED_CHROOT = NAME=/path/root, NAME2=/path2/root') is ready for\n"
      "/etc/condor/config.d/; -o writes it atomically, so HTCondor never reads half a file.\n"
      "Entries that are not verified now are left out with a warning on stderr; aliases are\n"
      "listed as names of their own. 'root' is never listed.\n\n"
      "Exit status: 0 written (even if some entries were left out), 2 error.",
      {store_option(), json_option(), {"output", 'o', true, false, "FILE", "write to FILE (atomically) instead of stdout"}},
      0, 0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  auto r = cat::condor_config(*settings);
  if (!r) return report(r.error());
  for (const auto& s : r->skipped) std::fprintf(stderr, "chrootctl: warning: leaving out %s: %s\n", s.name.c_str(), s.reason.c_str());
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
    w.key("skipped").begin_array();
    for (const auto& s : r->skipped) {
      w.begin_object();
      w.field("name", s.name);
      w.field("reason", s.reason);
      w.end_object();
    }
    w.end_array();
    w.end_object();
    out(w.str());
  } else if (!a.value("output")) {
    out(r->text);
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("condor-config", "print HTCondor's NAMED_CHROOT for the verified entries", condor_config_main);

}  // namespace chrootctl::cli
