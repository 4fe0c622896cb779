// chrootctl mount NAME [--hold-for PID] [--json]
//
// The shared mount of a sealed image on this node (docs/sealed.md), held by something that is
// not a `chrootctl run`: the site itself ("kept", for launchers without root, such as HTCondor's
// job wrapper), or a batch system's process that lives as long as the job (the Slurm plugin's
// slurmstepd). The front has these verbs: the Slurm plugin runs them for every job step.
#include <unistd.h>

#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/sealed.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace sl = chrootctl::launcher::sealed;

// NAME resolved, and the holder: "kept", or PID.STARTTIME.0 of a live process.
struct Target {
  cat::ResolvedRoot resolved;
  std::string holder;
};
Result<Target> target_of(const Settings& settings, const Args& a) {
  Target t;
  t.resolved = TRY(cat::resolve(settings, a.positional[0]));
  if (!t.resolved.version.sealed)
    return fail(Errc::invalid_argument, str(quote(a.positional[0]), " is a directory image (", t.resolved.root, "); only sealed images are mounted"));
  t.holder = sl::k_kept_holder;
  if (auto pid = a.value("hold-for")) {
    auto n = parse_u64(*pid);
    if (!n || *n == 0 || *n > 0x3fffffff) return fail(Errc::invalid_argument, str("--hold-for: ", quote(*pid), " is not a process id"));
    t.holder = TRY(sl::holder_for(static_cast<pid_t>(*n)));
  }
  return t;
}

int mount_main(std::span<char* const> argv) {
  const Spec spec{
      "mount",
      "NAME [--hold-for PID] [--store DIR] [--json]",
      "Mount the sealed image NAME on this node, as a launch does, and keep it mounted.",
      "The image must resolve (a recent full verification, nothing failed since). Its shared\n"
      "mount (under /run/chrootctl/sealed) stays until 'chrootctl unmount NAME', or, with\n"
      "--hold-for PID, until the process PID ends (then 'chrootctl cleanup' or the next launch\n"
      "of the image releases it). Launchers without root (HTCondor's job wrapper, a user's own\n"
      "'chrootctl run') can run a sealed image only while it is mounted. Needs root.\n"
      "Prints the mounted root.\n\n"
      "Exit status: 0 mounted, 1 NAME is unknown, not verified or not a sealed image, 2 error.",
      {store_option(), {"hold-for", 0, true, false, "PID", "hold it for the process PID, until it ends, instead of until 'unmount'"}, json_option()},
      1,
      1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  if (::geteuid() != 0) return report("mounting a sealed image needs root");
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto t = target_of(*settings, a);
  if (!t) {
    report(t.error());
    return cat::is_refusal(t.error()) ? k_failed_check : k_error;
  }
  const auto image = sealed_image(t->resolved.version);
  auto share = sl::Share::acquire(image, sealed_options(*settings), sealed_backend(), t->holder);
  if (!share) return report(share.error());
  share->keep();
  const auto verity = share->verity_state();
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", t->resolved.requested);
    w.field("entry", t->resolved.name);
    w.field("image", escape_bytes(image.file));
    w.field("root", escape_bytes(share->root()));
    w.field("dev", share->root_id().dev);
    w.field("ino", share->root_id().ino);
    w.field("holder", t->holder);
    w.field("verity", launcher::verity_state_name(verity ? *verity : launcher::VerityState::unknown));
    w.end_object();
    out(w.str());
  } else {
    out(share->root() + "\n");
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("mount", "mount a sealed image on this node and keep it mounted", mount_main);

}  // namespace chrootctl::cli
