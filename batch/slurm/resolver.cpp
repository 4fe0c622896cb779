// `chrootctl resolve --json NAME` (and `mount`/`unmount` of a sealed image), run from slurmstepd with posix_spawn (which glibc implements
// with CLONE_VM|CLONE_VFORK: nothing of the multi-threaded parent runs in the child).
#include "resolver.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::batch {

namespace {

// At most this much of the resolver's output is kept (its answer is a few hundred bytes).
constexpr std::size_t k_max_output = 1u << 16;

struct SpawnActions {
  posix_spawn_file_actions_t actions;
  SpawnActions() { ::posix_spawn_file_actions_init(&actions); }
  ~SpawnActions() { ::posix_spawn_file_actions_destroy(&actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
};

struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { ::posix_spawnattr_init(&attr); }
  ~SpawnAttr() { ::posix_spawnattr_destroy(&attr); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
};

std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

namespace {

// Runs `chrootctl VERB ARGS... NAME` and returns what it printed on stdout (exit 0); a refusal
// (exit 1) is Errc::mismatch with chrootctl's own message.
Result<std::string> run_verb(const SpankConfig& config, const std::string& verb, std::vector<std::string> verb_args, const std::string& name) {
  if (auto why = invalid_chroot_name(name)) return fail(Errc::invalid_argument, *why);
  std::vector<std::string> args{config.chrootctl, verb};
  args.insert(args.end(), verb_args.begin(), verb_args.end());
  if (config.store) {
    args.push_back("--store");
    args.push_back(*config.store);
  }
  args.push_back(name);
  // A fixed environment: nothing of slurmstepd's (or the job's) reaches the resolver, so no
  // $CHROOTCTL_STORE or $CHROOTCTL_CONFIG can redirect it.
  std::vector<std::string> env{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
  if (config.config) env.push_back("CHROOTCTL_CONFIG=" + *config.config);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail_errno("pipe2(O_CLOEXEC)", errno);
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return fail_errno("pipe2(O_CLOEXEC)", errno);
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  SpawnActions fa;
  ::posix_spawn_file_actions_addopen(&fa.actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa.actions, out_w.get(), 1);
  ::posix_spawn_file_actions_adddup2(&fa.actions, err_w.get(), 2);
  SpawnAttr sa;
  // Default dispositions and an empty mask for the resolver, whatever slurmstepd blocks.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  ::posix_spawnattr_setsigdefault(&sa.attr, &all);
  ::posix_spawnattr_setsigmask(&sa.attr, &none);
  ::posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  if (const int rc = ::posix_spawn(&pid, argv[0], &fa.actions, &sa.attr, argv.data(), envp.data()); rc != 0)
    return fail_errno(str("posix_spawn(", quote(config.chrootctl), ")"), rc, "check chrootctl= in plugstack.conf");
  out_w.reset();
  err_w.reset();
  auto child =
      TRY(sys::collect_child(pid, std::move(out_r), std::move(err_r), static_cast<std::int64_t>(config.timeout_seconds) * 1000, k_max_output));
  const bool timed_out = child.timed_out;
  const std::string& out = child.out;
  const std::string& err = child.err;
  const std::string shown = str(config.chrootctl, " ", verb);
  if (timed_out) return fail(Errc::io, str(shown, " did not answer within ", config.timeout_seconds, " s (timeout= in plugstack.conf)"));
  if (child.signal) return fail(Errc::io, str(shown, " was killed by signal ", child.signal));
  const int code = child.status;
  // Its message: "chrootctl: error: 'X' is not in the catalogue ...".
  std::string message = last_line(err);
  if (const std::string prefix = "chrootctl: error: "; message.compare(0, prefix.size(), prefix) == 0) message.erase(0, prefix.size());
  if (code == 1) return fail(Errc::mismatch, message.empty() ? str(quote(name), " was refused") : message);
  if (code != 0) return fail(Errc::io, str(shown, " failed (exit status ", code, ")", message.empty() ? "" : ": ", message));
  return out;
}

}  // namespace

Result<ResolvedName> run_resolver(const SpankConfig& config, const std::string& name) {
  std::vector<std::string> args{"--json", "--with-seccomp"};
  if (config.fast) args.push_back("--fast");
  return parse_resolve_json(TRY(run_verb(config, "resolve", args, name)));
}

Result<MountedImage> run_mount(const SpankConfig& config, const std::string& name, pid_t holder) {
  return parse_mount_json(TRY(run_verb(config, "mount", {"--json", "--hold-for", std::to_string(holder)}, name)));
}

Status run_unmount(const SpankConfig& config, const std::string& name, pid_t holder) {
  TRY(run_verb(config, "unmount", {"--hold-for", std::to_string(holder)}, name));
  return {};
}

}  // namespace chrootctl::batch
