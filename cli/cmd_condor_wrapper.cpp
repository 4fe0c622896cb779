// chrootctl condor-wrapper [--store DIR] [--config FILE] [--mount-under-scratch DIRS] -- JOB [ARGS...]
//
// HTCondor's USER_JOB_WRAPPER (through the script `condor-config --wrapper` writes). The starter
// runs it as the job's user, in the job's working directory, with the job's environment
// ($_CONDOR_JOB_AD, $_CONDOR_SCRATCH_DIR, ...) and the job's command line as arguments.
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "chrootctl/launcher/sealed.hpp"
#include "cli.hpp"
#include "launch_accounting.hpp"
#include "sealed.hpp"
#include "seccomp_choice.hpp"

extern char** environ;

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace ln = chrootctl::launcher;

// As `run`: chrootctl failed before the job started.
constexpr int k_setup_failed = 125;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The job did not start: the reason goes to the job's stderr and, as HTCondor documents for
// wrappers, to $_CONDOR_WRAPPER_ERROR_FILE, whose text the starter puts into the job's hold
// reason. Best effort: the exit status says it as well.
int refuse(const std::string& why, int status = k_setup_failed) {
  // The reason quotes the job ad, which the job's owner wrote: terminal-safe, here and in the
  // hold reason.
  const std::string message = str("chrootctl condor-wrapper: error: ", terminal_safe(why), "; the job was not started\n");
  err(message);
  const std::string file = env_or_empty("_CONDOR_WRAPPER_ERROR_FILE");
  if (!file.empty()) {
    if (auto fd = sys::open_path(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NOCTTY, 0644))
      (void)sys::write_all(fd->get(), message.substr(std::strlen("chrootctl condor-wrapper: error: ")));
  }
  return status;
}

// A job that asks for no root: exactly what HTCondor would have run, with the environment as
// the starter made it (the wrapper has changed nothing yet).
int exec_unchanged(const std::vector<std::string>& job) {
  std::vector<char*> argv;
  argv.reserve(job.size() + 1);
  for (const auto& a : job) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  const int err = errno;
  return refuse(str("execvp(", quote(job[0]), "): ", std::strerror(err)), err == ENOENT ? 127 : 126);
}

// The job's working directory inside the root: the sandbox (where the starter starts a job that
// transfers its files), or the directory the starter gave us, bound at its own path (a job
// running from a shared file system).
void plan_cwd(ln::RunOptions& o, std::optional<std::string>& cwd) {
  char buf[PATH_MAX];
  if (!::getcwd(buf, sizeof buf)) return;
  const std::string here = buf;
  if (here == o.sandbox) return;
  if (starts_with(here, o.sandbox + "/")) {
    cwd = here;  // inside the sandbox, which appears at its own path
    return;
  }
  if (here == "/") return;
  o.binds.push_back({here, here, false});
  cwd = here;
}

int condor_wrapper_main(std::span<char* const> argv) {
  const Spec spec{"condor-wrapper",
                  "[--store DIR] [--config FILE] [--mount-under-scratch DIRS] -- JOB [ARGS...]",
                  "HTCondor's USER_JOB_WRAPPER: run a job in the root its ad asks for, or unchanged.",
                  "Run by HTCondor's starter as the job's user (USER_JOB_WRAPPER, through the script that\n"
                  "'chrootctl condor-config --wrapper' writes). It reads RequestedChroot from the job ad\n"
                  "$_CONDOR_JOB_AD. Without it, the job is exec'd unchanged. With it, the name is resolved\n"
                  "through the catalogue and the job runs in that root as 'chrootctl run' would run it\n"
                  "(a user namespace mapping the user to itself): the image read-only, the sandbox\n"
                  "$_CONDOR_SCRATCH_DIR at its own path and as the working directory, the MOUNT_UNDER_SCRATCH\n"
                  "directories backed by it, the job's environment passed on. An unknown, unverified, empty\n"
                  "or non-string name, or 'root', fails the job: the reason goes to its stderr and to\n"
                  "$_CONDOR_WRAPPER_ERROR_FILE (HTCondor then holds the job), and it never runs on the host.\n"
                  "$CHROOTCTL_STORE and $CHROOTCTL_CONFIG of the job are ignored: --store and --config say.\n\n"
                  "Exit status: the job's own status (a job killed by a signal kills the wrapper with it);\n"
                  "125 the job was refused or could not be set up, 126 it could not be executed, 127 not found.",
                  {store_option(),
                   {"config", 0, true, false, "FILE", "chrootctl's configuration file (default /etc/chrootctl/config.toml)"},
                   {"mount-under-scratch", 0, true, false, "DIRS", "comma-separated dirs backed by SANDBOX/DIR (default /tmp,/var/tmp)"}},
                  0,
                  0,
                  true};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc == k_ok ? k_ok : refuse("bad command line (see above)");
  if (a.rest.empty() || a.rest.front().empty()) return refuse("no job command after '--'");

  // 1. What the job asks for. Without a job ad nobody can tell, so nothing runs.
  const std::string ad = env_or_empty("_CONDOR_JOB_AD");
  if (ad.empty()) return refuse("$_CONDOR_JOB_AD is not set, so whether the job asks for a root is unknown");
  // By the ClassAd file rules, failing closed: a request that cannot be read is refused, never
  // taken for "no request" (catalogue/condor.hpp).
  std::string ad_text;
  auto request = cat::find_request_in_ad_file(ad, &ad_text);
  if (!request) return refuse(request.error().what());
  if (!request->present) return exec_unchanged(a.rest);

  // 2. The job's environment as the starter made it, before the wrapper's own settings.
  std::vector<std::pair<std::string, std::string>> job_env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos && eq > 0) job_env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  // The job chooses its environment (submit file 'environment ='): it must not choose the
  // catalogue or the policy that decide which directory it runs in.
  ::unsetenv("CHROOTCTL_STORE");
  ::unsetenv("CHROOTCTL_CONFIG");
  ::unsetenv("CHROOTCTL_STATE_DIR");  // nor where the sealed images' mounts are
  if (auto c = a.value("config")) ::setenv("CHROOTCTL_CONFIG", c->c_str(), 1);
  auto settings = load_existing_store_settings(a);
  // From here on every outcome, a refusal included, is recorded in the accounting log (once
  // the configuration that names it could be read), with the job's id from its ad.
  ln::AccountingRecord record = begin_record("condor-wrapper");
  record.batch_system = "htcondor";
  record.batch_job_id = cat::job_id_in_ad(ad_text);
  record.job_uid = ::getuid();
  auto refuse_recorded = [&](const std::string& why, int status = k_setup_failed) {
    if (settings) record_refusal(*settings, record, why);
    return refuse(why, status);
  };
  if (!request->problem.empty()) return refuse_recorded(cat::describe_request(ad, *request, request->problem));
  if (!settings) return refuse(settings.error().what());
  record.image = request->name;
  auto resolved = cat::resolve(*settings, request->name);
  if (!resolved) return refuse_recorded(cat::describe_request(ad, *request, resolved.error().what()));
  add_image(record, *resolved);

  // 3. The sandbox, as the starter made it.
  ln::RunOptions o;
  o.sandbox = env_or_empty("_CONDOR_SCRATCH_DIR");
  if (o.sandbox.empty() || o.sandbox[0] != '/')
    return refuse_recorded(str("$_CONDOR_SCRATCH_DIR is ", o.sandbox.empty() ? "not set" : str("not absolute (", quote(o.sandbox), ")"),
                               ", so there is no sandbox for ", quote(request->name)));
  std::optional<ln::sealed::Share> share;  // a sealed image's mount, while the job runs
  if (resolved->version.sealed) {
    // The wrapper runs as the job's user: it uses the image's mount on this node, which the site
    // keeps ('chrootctl mount NAME' as root); it cannot make one.
    const auto image = sealed_image(resolved->version);
    auto holder = ln::sealed::holder_for_self();
    if (!holder) return refuse_recorded(holder.error().what());
    auto held = ::geteuid() == 0 ? ln::sealed::Share::acquire(image, sealed_options(*settings), sealed_backend(), *holder)
                                 : ln::sealed::Share::existing(image, sealed_options(*settings));
    if (!held) return refuse_recorded(cat::describe_request(ad, *request, held.error().what()));
    share.emplace(std::move(*held));
    o.root = share->root();
    o.root_id = share->root_id();
  } else {
    o.root = resolved->root;
    o.root_id = ln::RootId{resolved->version.identity.dev, resolved->version.identity.ino};
  }
  if (settings->job_ids_start) o.job_ids.start = *settings->job_ids_start;
  if (settings->job_ids_count) o.job_ids.count = *settings->job_ids_count;
  if (auto m = a.value("mount-under-scratch")) {
    o.mount_under_scratch.clear();
    for (const auto& d : split(*m, ','))
      if (!trim(d).empty()) o.mount_under_scratch.emplace_back(trim(d));
  }
  o.user = std::to_string(::getuid());  // the job's user; a user namespace has no other
  o.env = job_env;
  o.argv = a.rest;
  std::optional<std::string> cwd;
  plan_cwd(o, cwd);
  // The system-call filter: the image's policy, else the site's.
  auto seccomp = prepare_job_seccomp(*settings, std::nullopt, resolved->seccomp);
  if (!seccomp) return refuse_recorded(str(quote(request->name), ": ", seccomp.error().what()));
  o.seccomp = seccomp->plan;

  // 4. The launch, as `chrootctl run` makes it, with the job's working directory.
  const ln::HostFacts facts = ln::gather_host_facts();
  auto creds = ln::resolve_job_user(o.user, facts, facts.euid != 0);
  if (!creds) return refuse_recorded(creds.error().what());
  auto plan = ln::plan_launch(o, facts, *creds);
  if (!plan) return refuse_recorded(plan.error().what());
  if (cwd) plan->cwd = *cwd;
  const ln::Outcome outcome = ln::execute(*plan, [](const std::string& m) { err(str("chrootctl condor-wrapper: warning: ", m, "\n")); });
  if (share) {
    if (auto v = share->verity_state(); v && *v == ln::VerityState::corrupted)
      err(str("chrootctl condor-wrapper: error: dm-verity found a corrupted block in the sealed image ", resolved->version.root,
              ": a read of it failed with EIO (the image file was changed on disk)\n"));
    (void)share->release();
  }
  // A private cache of the compiled filter (a job user without a state directory) goes now:
  // a job killed by a signal ends this process by the same signal, without destructors.
  seccomp->scratch.reset();
  record_launch(*settings, record, outcome);
  switch (outcome.kind) {
    case ln::Outcome::Kind::exited:
      return outcome.code;
    case ln::Outcome::Kind::signaled: {
      // The starter tells "exited with 137" from "killed by signal 9": die of the same signal
      // (no core dump of the wrapper), and exit 128+N only if that does not happen.
      // Failures below leave the wrapper alive: it then exits 128+N, which says the same.
      (void)std::fflush(stdout);
      struct rlimit none {
        0, 0
      };
      (void)::setrlimit(RLIMIT_CORE, &none);
      (void)::signal(outcome.code, SIG_DFL);
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, outcome.code);
      ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
      (void)::raise(outcome.code);
      return outcome.exit_status();
    }
    default:
      return refuse(str(quote(request->name), ": ", outcome.error), outcome.exit_status());
  }
}

}  // namespace

CHROOTCTL_VERB("condor-wrapper", "HTCondor's USER_JOB_WRAPPER: run a job in the root its ad asks for", condor_wrapper_main);

}  // namespace chrootctl::cli
