// chrootctl run NAME|--root DIR --sandbox DIR [options] -- CMD ARGS...
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <optional>

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

namespace chrootctl::cli {
namespace {

namespace ln = chrootctl::launcher;

// Exit statuses of `run` (the job's own statuses pass through unchanged).
constexpr int k_setup_failed = 125;

/// Turns an image NAME into its verified root through the catalogue: refused unless the image
/// passed a full verification recently, nothing has failed since, the root is still the
/// directory recorded and (with `fast`, the default) its metadata matches its stat record.
Result<catalogue::ResolvedRoot> resolve_root(const Settings& settings, const std::string& name, bool fast) {
  catalogue::ResolveOptions ro;
  ro.fast = fast;
  return catalogue::resolve(settings, name, ro);
}

Result<std::uint32_t> parse_cpus(const std::string& text) {
  // "2", "0.5", "1.25": hundredths of a CPU.
  std::size_t dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  const std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
  auto w = whole.empty() ? std::optional<std::uint64_t>(0) : parse_u64(whole);
  if (!w || (whole.empty() && frac.empty()) || frac.size() > 2 || (!frac.empty() && !parse_u64(frac)) || *w > 100000)
    return fail(Errc::invalid_argument, str("--cpus: ", quote(text), " is not a number of CPUs (like 2 or 0.5)"));
  std::uint64_t centi = *w * 100;
  if (!frac.empty()) centi += *parse_u64(frac) * (frac.size() == 1 ? 10 : 1);
  return static_cast<std::uint32_t>(centi);
}

Result<std::uint64_t> parse_size_option(const std::string& name, const std::string& text) {
  auto v = parse_size(text);
  if (!v) return fail(Errc::invalid_argument, str("--", name, ": ", quote(text), " is not a size (like 512M or 2G)"));
  return *v;
}

/// `--env-file FILE`: one K=V per line; empty lines and lines starting with '#' are skipped;
/// the value is the rest of the line, as is (no quotes, no expansion). The file must be a
/// regular file (not a symlink) of root's or the caller's, writable by no one else: a launcher
/// run as root must not pass on what another user put there. Errors never quote a line (it may
/// hold a secret).
Result<std::vector<std::pair<std::string, std::string>>> read_env_file(const std::string& path) {
  Fd fd = TRY(with_context(sys::open_path(path, O_RDONLY | O_NOFOLLOW), "--env-file"));
  const auto st = TRY(sys::fstat(fd.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::permission, str("--env-file ", path, ": not a regular file"));
  if ((st.st_uid != 0 && st.st_uid != ::getuid()) || (st.st_mode & 022))
    return fail(Errc::permission, str("--env-file ", path, ": owned by uid ", st.st_uid, " with mode ", mode_octal(st.st_mode & 07777),
                                      "; it must belong to root or to you and be writable by no one else"));
  const std::string text = TRY(with_context(sys::read_fd(fd.get(), 1u << 20), str("--env-file ", path)));
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t number = 0;
  for (const auto& line : split(text, '\n')) {
    ++number;
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) return fail(Errc::parse, str(path, ":", number, ": expected K=V"));
    out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

/// Overwrites the value of every --env K=V on the command line (up to "--") with zero bytes.
void wipe_env_values(std::span<char* const> argv) {
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    char* assignment = nullptr;
    if (arg == "--env" && i + 1 < argv.size()) assignment = argv[++i];
    else if (starts_with(arg, "--env=")) assignment = argv[i] + 6;
    if (!assignment) continue;
    if (char* eq = std::strchr(assignment, '=')) std::memset(eq + 1, 0, std::strlen(eq + 1));
  }
}

/// The shared mount of a sealed image for this launch: as root, a share held by this process
/// (mounting the image if no launch on the node has); otherwise the mount a root launch or
/// `chrootctl mount` made, if any.
Result<ln::sealed::Share> use_sealed(const Settings& settings, const catalogue::Version& v) {
  const auto image = sealed_image(v);
  const auto options = sealed_options(settings);
  if (::geteuid() != 0) return ln::sealed::Share::existing(image, options);
  const std::string holder = TRY(ln::sealed::holder_for_self());
  return ln::sealed::Share::acquire(image, options, sealed_backend(), holder);
}

/// What dm-verity saw while the job ran, for --status-json.
ln::SealedStatus sealed_status(const ln::sealed::Share& share, const std::string& image) {
  auto state = share.verity_state();
  return {image, share.root(), state ? *state : ln::VerityState::unknown};
}

int run_main(std::span<char* const> argv) {
  const Spec spec{
      "run",
      "NAME|--root DIR --sandbox DIR [OPTIONS] -- CMD [ARGS...]",
      "Run CMD inside a job root: isolated, limited, leaving nothing behind.",
      "The root is mounted read-only, nosuid and nodev (submounts included) in private user,\n"
      "mount, PID, IPC, UTS and cgroup namespaces; the sandbox appears at its own path (the\n"
      "job's working directory) and backs the MOUNT_UNDER_SCRATCH directories; /proc is fresh\n"
      "and /dev minimal. The job runs with no capabilities and no_new_privs, in its own cgroup;\n"
      "no id in its user namespace maps to the host's root (a job as root gets a block of ids\n"
      "of its own, and what it writes in its sandbox belongs to the sandbox's owner). It runs\n"
      "under a system-call filter: the image's policy (add --seccomp), else the site's\n"
      "([seccomp] in the configuration), else the built-in default (docs/seccomp.md).\n\n"
      "Exit status: the job's own status, or 128+N when it was killed by signal N;\n"
      "125 chrootctl failed before the job started (the reason is on stderr), 126 the command\n"
      "could not be executed, 127 the command was not found in the root.",
      {{"root", 0, true, false, "DIR", "the job root (a directory), instead of an image NAME"},
       store_option(),
       {"skip-metadata-check", 0, false, false, "",
        "do not compare the image's metadata with its stat record before the launch (images on read-only filesystems)"},
       {"sandbox", 0, true, false, "DIR", "the job's sandbox, owned by the job user or root; appears at the same path inside"},
       {"user", 0, true, false, "USER", "run as USER (name or uid, resolved on the host); root needs --user root"},
       {"scratch-path", 0, true, false, "PATH", "also bind the sandbox at PATH inside the root"},
       {"mount-under-scratch", 0, true, false, "DIRS", "comma-separated dirs backed by SANDBOX/DIR (default /tmp,/var/tmp)"},
       {"bind", 0, true, true, "SRC:DST[:ro]", "bind a host path (nosuid, nodev; read-only with :ro)"},
       {"memory", 0, true, false, "SIZE", "memory hard limit (like 2G)"},
       {"memory-low", 0, true, false, "SIZE", "memory protection (v2 memory.low; v1 soft limit)"},
       {"swap", 0, true, false, "SIZE", "swap allowed on top of --memory (default 0)"},
       {"cpus", 0, true, false, "N", "CPU weight: 100 per CPU (v2 cpu.weight, v1 cpu.shares)"},
       {"pids", 0, true, false, "N", "maximum number of processes and threads"},
       {"net", 0, true, false, "host|none", "share the host's network (default) or only a loopback"},
       {"shm", 0, true, false, "SIZE", "size of the private /dev/shm (default: 64M, or --memory if smaller)"},
       {"env", 0, true, true, "K=V", "set an environment variable (its value is wiped from chrootctl's command line)"},
       {"env-file", 0, true, true, "FILE", "set the variables of FILE (K=V lines; # comments): for secrets"},
       {"keep-env", 0, true, true, "K", "pass the caller's variable K through"},
       {"status-json", 0, true, false, "FILE", "write the outcome and accounting to FILE (atomically)"},
       {"seccomp", 0, true, false, "FILE|default|none", "the system-call policy: a policy file, the built-in default, or none (root only)"},
       {"require-limits", 0, false, false, "", "fail (125) rather than run without the cgroup limits"},
       {"no-pty", 0, false, false, "", "give the job the caller's terminal itself, not a terminal of its own"}},
      0,
      1,
      true};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc == k_ok ? k_ok : k_setup_failed;
  // The values are copied into `a`: wipe them from this process's command line, which every
  // host user can read (ps, /proc/PID/cmdline) and which init, a copy of this process, would
  // show the job.
  wipe_env_values(argv);
  auto usage = [&](const std::string& m) {
    usage_error(spec, m);
    return k_setup_failed;
  };

  ln::RunOptions o;
  std::optional<ln::sealed::Share> share;  // a sealed image's mount, held while the job runs
  std::string image_policy;                // the catalogue entry's system-call policy
  if (a.value("root") && !a.positional.empty()) return usage("give either an image NAME or --root DIR, not both");
  if (a.value("root") && (a.value("store") || a.flag("skip-metadata-check")))
    return usage("--store and --skip-metadata-check apply to an image NAME, not to --root");
  auto settings = load_existing_store_settings(a);
  if (!settings) {
    report(settings.error());
    return k_setup_failed;
  }
  // The accounting line is written for every launch from here on, refused ones included.
  ln::AccountingRecord record = begin_record("run");
  auto refuse = [&](const Error& e) {
    report(e);
    record_refusal(*settings, record, e.what());
    return k_setup_failed;
  };
  if (settings->job_ids_start) o.job_ids.start = *settings->job_ids_start;
  if (settings->job_ids_count) o.job_ids.count = *settings->job_ids_count;
  if (settings->shm_size) o.shm_default = *settings->shm_size;
  if (auto given = a.value("root")) {
    o.root = *given;
    record.root = *given;
  } else if (!a.positional.empty()) {
    // By default every file's type, mode, owner, size, inode and ctime are compared with the
    // stat record (resolve --fast): an image whose files some host user can change (its uid
    // owns them on the host too) is refused as soon as they change, not at the next full verify.
    record.image = a.positional[0];
    auto resolved = resolve_root(*settings, a.positional[0], !a.flag("skip-metadata-check"));
    if (!resolved) return refuse(resolved.error());
    add_image(record, *resolved);
    if (resolved->version.sealed) {
      // A sealed image: the node's shared mount of it (made now if no launch has it mounted),
      // held until the job ends; its root is pinned like a directory root's.
      auto held = use_sealed(*settings, resolved->version);
      if (!held) return refuse(held.error());
      share.emplace(std::move(*held));
      o.root = share->root();
      o.root_id = share->root_id();
      o.after_job = [&share, image = resolved->version.root](ln::Outcome& out) { out.sealed = sealed_status(*share, image); };
    } else {
      o.root = resolved->root;
      o.root_id = ln::RootId{resolved->version.identity.dev, resolved->version.identity.ino};
    }
    image_policy = resolved->seccomp;
  } else {
    return usage("no root: give an image NAME or --root DIR");
  }
  if (!a.value("sandbox")) return usage("--sandbox DIR is required");
  o.sandbox = *a.value("sandbox");
  o.user = a.value("user");
  o.scratch_path = a.value("scratch-path");
  if (auto m = a.value("mount-under-scratch")) {
    o.mount_under_scratch.clear();
    for (const auto& d : split(*m, ','))
      if (!trim(d).empty()) o.mount_under_scratch.emplace_back(trim(d));
  }
  for (const auto& b : a.values("bind")) {
    const auto parts = split(b, ':');
    if (parts.size() < 2 || parts.size() > 3 || (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw"))
      return usage(str("--bind ", quote(b), ": expected SRC:DST or SRC:DST:ro"));
    o.binds.push_back({parts[0], parts[1], parts.size() == 3 && parts[2] == "ro"});
  }
  for (const char* name : {"memory", "memory-low", "swap", "shm"}) {
    if (auto v = a.value(name)) {
      auto s = parse_size_option(name, *v);
      if (!s) return usage(s.error().message());
      const std::string_view n(name);
      (n == "memory" ? o.memory : n == "swap" ? o.swap : n == "shm" ? o.shm : o.memory_low) = *s;
    }
  }
  if (auto v = a.value("cpus")) {
    auto c = parse_cpus(*v);
    if (!c) return usage(c.error().message());
    o.cpus_centi = *c;
  }
  if (auto v = a.value("pids")) {
    auto n = parse_u64(*v);
    if (!n) return usage(str("--pids: ", quote(*v), " is not a number"));
    o.pids = *n;
  }
  if (auto v = a.value("net")) {
    if (*v == "host") o.net = ln::NetMode::host;
    else if (*v == "none") o.net = ln::NetMode::none;
    else return usage(str("--net: ", quote(*v), " (host or none)"));
  }
  for (const auto& file : a.values("env-file")) {
    auto vars = read_env_file(file);
    if (!vars) return refuse(vars.error());
    o.env.insert(o.env.end(), vars->begin(), vars->end());
  }
  for (const auto& e : a.values("env")) {
    const auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) return usage(str("--env ", quote(e), ": expected K=V"));
    o.env.emplace_back(e.substr(0, eq), e.substr(eq + 1));
  }
  o.keep_env = a.values("keep-env");
  o.status_json = a.value("status-json");
  o.require_limits = a.flag("require-limits");
  o.no_pty = a.flag("no-pty");
  o.argv = a.rest;
  if (o.argv.empty()) return usage("no command: put it after '--'");
  if (auto s = a.value("seccomp"); s && s->empty()) return usage("--seccomp: expected FILE, default or none");

  // The system-call filter: chosen, and compiled if it is not cached yet, before the launch.
  auto seccomp = prepare_job_seccomp(*settings, a.value("seccomp"), image_policy);
  if (!seccomp) {
    (void)std::fprintf(stderr, "chrootctl run: %s\n", seccomp.error().what().c_str());
    record_refusal(*settings, record, seccomp.error().what());
    return k_setup_failed;
  }
  o.seccomp = seccomp->plan;

  const ln::Outcome outcome = ln::run_job(o);
  if (!outcome.error.empty()) (void)std::fprintf(stderr, "chrootctl run: %s\n", outcome.error.c_str());
  record_launch(*settings, record, outcome);
  if (outcome.sealed && outcome.sealed->verity == ln::VerityState::corrupted)
    err(str("chrootctl run: error: dm-verity found a corrupted block in the sealed image ", outcome.sealed->image,
            ": a read of it failed with EIO (the image file was changed on disk; run 'chrootctl verify ",
            a.positional.empty() ? std::string("NAME") : a.positional[0], "')\n"));
  if (share) {
    if (auto r = share->release(); !r) err(str("chrootctl run: warning: ", r.error().what(), "\n"));
  }
  return outcome.exit_status();
}

}  // namespace

CHROOTCTL_VERB("run", "run a job inside a job root, isolated and limited", run_main);

}  // namespace chrootctl::cli
