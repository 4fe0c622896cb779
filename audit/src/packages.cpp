// Check 12: the packages installed in an image, from dpkg's status file (parsed here) or from an
// rpm database (read by the host's rpm from a private copy, without privileges).
#include "chrootctl/audit/packages.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::audit {

std::string_view source_name(PackageList::Source s) {
  switch (s) {
    case PackageList::Source::none:
      return "none";
    case PackageList::Source::dpkg:
      return "dpkg";
    case PackageList::Source::rpm:
      return "rpm";
    case PackageList::Source::unknown:
      return "unknown";
  }
  return "none";
}

namespace {

void sort_packages(std::vector<Package>& v) {
  std::sort(v.begin(), v.end(),
            [](const Package& a, const Package& b) { return std::tie(a.name, a.arch, a.version) < std::tie(b.name, b.arch, b.version); });
}

// Package states in which the package's files are on disk (dpkg-query(1), "Status").
bool files_present(std::string_view state) {
  return state == "installed" || state == "unpacked" || state == "half-installed" || state == "half-configured" || state == "triggers-awaited" ||
         state == "triggers-pending";
}

}  // namespace

Result<std::vector<Package>> parse_dpkg_status(std::string_view text, const std::string& label) {
  std::vector<Package> out;
  struct Stanza {
    unsigned line = 0;
    std::string package, version, arch, status;
  } cur;
  auto close = [&]() -> Status {
    if (cur.line == 0) return {};
    if (cur.package.empty()) return fail(Errc::parse, str(label, ":", cur.line, ": stanza without a Package field"));
    const auto words = split(cur.status, ' ');
    std::vector<std::string> w;
    for (auto& x : words)
      if (!x.empty()) w.push_back(x);
    if (w.size() != 3) return fail(Errc::parse, str(label, ":", cur.line, ": package ", quote(cur.package), " has no valid Status field"));
    if (files_present(w[2])) {
      if (cur.version.empty()) return fail(Errc::parse, str(label, ":", cur.line, ": package ", quote(cur.package), " has no Version field"));
      out.push_back({cur.package, cur.version, cur.arch});
    }
    cur = Stanza{};
    return {};
  };
  Lines lines(text);
  std::string_view line;
  unsigned number = 0;
  while (lines.next(line, number)) {
    if (trim(line).empty()) {
      TRY(close());
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') {  // continuation of a multi-line field
      if (cur.line == 0) return fail(Errc::parse, str(label, ":", number, ": continuation line outside a stanza"));
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(Errc::parse, str(label, ":", number, ": not a 'Field: value' line"));
    if (cur.line == 0) cur.line = number;
    const auto name = line.substr(0, colon);
    const std::string value(trim(line.substr(colon + 1)));
    if (name == "Package") cur.package = value;
    else if (name == "Version") cur.version = value;
    else if (name == "Architecture") cur.arch = value;
    else if (name == "Status") cur.status = value;
  }
  TRY(close());
  sort_packages(out);
  return out;
}

Result<std::vector<Package>> parse_rpm_query(std::string_view text) {
  std::vector<Package> out;
  unsigned number = 0;
  for (const auto& line : split(text, '\n')) {
    ++number;
    if (line.empty()) continue;
    const auto f = split(line, '\t');
    if (f.size() != 3 || f[0].empty() || f[1].empty())
      return fail(Errc::parse, str("rpm output line ", number, ": expected NAME, VERSION and ARCH separated by tabs: ", quote(line)));
    out.push_back({f[0], f[1], f[2] == "(none)" ? std::string() : f[2]});
  }
  sort_packages(out);
  return out;
}

namespace {

// rpm runs under a transient uid and gid from this range, chosen at random for each run (as
// systemd's DynamicUser does), rather than as nobody: a process that shares the identity could
// ptrace rpm or rewrite its copy of the database, and many services run as nobody.
constexpr std::uint32_t k_transient_base = 0x70000000u;
constexpr std::uint32_t k_transient_span = 0x0ffff000u;
constexpr std::size_t k_status_limit = 256u << 20;
constexpr std::uint64_t k_rpmdb_limit = 4ull << 30;
constexpr int k_rpm_timeout_ms = 300'000;

// Opens a regular file inside the image (symlinks resolved inside the root) without opening
// anything else: O_PATH first, then the same inode re-opened for reading once it is known to be
// a regular file (opening a device or FIFO can have side effects). nullopt if it does not exist.
Result<std::optional<Fd>> open_image_file(int rootfd, const std::string& rel) {
  auto p = sys::open_in_root(rootfd, rel, O_PATH);
  if (!p) {
    if (p.error().sys_errno() == ENOENT || p.error().sys_errno() == ENOTDIR) return std::optional<Fd>();
    return fail(std::move(p.error()));
  }
  auto st = TRY(sys::fstat(p->get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str("/", rel, " in the image is not a regular file"));
  auto fd = TRY(sys::open_path(str("/proc/self/fd/", p->get()), O_RDONLY | O_NOCTTY | O_NONBLOCK));
  return std::optional<Fd>(std::move(fd));
}

Result<std::uint32_t> transient_id() {
  std::uint32_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) return fail_errno("getrandom(4 bytes)", errno);
  return k_transient_base + r % k_transient_span;
}

// Runs `argv[0]` with `env`, in `cwd`, as uid and gid `id` when we are root (no supplementary
// groups), with no new privileges, stdin from /dev/null, and a time limit. Everything the child
// needs is prepared before fork.
Result<sys::ChildOutput> run_unprivileged(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& cwd,
                                          std::uint32_t id) {
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  auto devnull = TRY(sys::open_path("/dev/null", O_RDONLY));
  int outp[2], errp[2];
  if (::pipe2(outp, O_CLOEXEC) != 0) return fail_errno("pipe2()", errno);
  Fd out_r(outp[0]), out_w(outp[1]);
  if (::pipe2(errp, O_CLOEXEC) != 0) return fail_errno("pipe2()", errno);
  Fd err_r(errp[0]), err_w(errp[1]);
  const bool drop = ::geteuid() == 0;

  const pid_t pid = ::fork();
  if (pid < 0) return fail_errno(str("fork() for ", argv[0]), errno);
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    if (::dup2(devnull.get(), 0) < 0 || ::dup2(out_w.get(), 1) < 0 || ::dup2(err_w.get(), 2) < 0) ::_exit(126);
    if (drop && (::setgroups(0, nullptr) != 0 || ::setresgid(id, id, id) != 0 || ::setresuid(id, id, id) != 0)) ::_exit(126);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) ::_exit(126);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);  // kernel-direct: child after fork, async-signal-safe only
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  out_w.reset();
  err_w.reset();
  return sys::collect_child(pid, std::move(out_r), std::move(err_r), k_rpm_timeout_ms, 64u << 20);
}

std::string find_rpm() {
  // A test or an administrator may point at another rpm; it must exist and be executable.
  if (const char* env = std::getenv("CHROOTCTL_RPM"); env && *env) return sys::access_path(env, X_OK) ? std::string(env) : std::string();
  for (const char* p : {"/usr/bin/rpm", "/bin/rpm"})
    if (sys::access_path(p, X_OK)) return p;
  return {};
}

// Copies one regular file of the database directory into the private directory.
Status copy_db_file(int dbdir, const std::string& name, const std::string& dest_dir, std::optional<std::uint32_t> owner) {
  auto in = TRY(sys::open_at(dbdir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  auto st = TRY(sys::fstat(in.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str(quote(name), " in the rpm database directory is not a regular file"));
  if (static_cast<std::uint64_t>(st.st_size) > k_rpmdb_limit)
    return fail(Errc::invalid_argument, str(quote(name), " in the rpm database is larger than ", human_size(k_rpmdb_limit)));
  const std::string dest = dest_dir + "/" + name;
  auto out = TRY(sys::open_path(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
  char buf[1 << 16];
  while (true) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(in.get(), buf, sizeof buf); });
    if (n < 0) return fail_errno(str("read(", quote(name), ")"), errno);
    if (n == 0) break;
    TRY(sys::write_all(out.get(), std::string_view(buf, static_cast<std::size_t>(n))));
  }
  if (owner && ::fchown(out.get(), *owner, *owner) != 0) return fail_errno(str("fchown(", quote(dest), ", ", *owner, ", ", *owner, ")"), errno);
  return {};
}

Result<PackageList> read_rpm(int rootfd) {
  PackageList list;
  for (auto dir : k_rpm_db_dirs) {
    auto dfd = sys::open_in_root(rootfd, std::string(dir.substr(1)), O_RDONLY | O_DIRECTORY);
    if (!dfd) {
      const int err = dfd.error().sys_errno();
      if (err == ENOENT || err == ENOTDIR) continue;
      return fail(std::move(dfd.error()));
    }
    auto names = TRY(sys::read_dir(dfd->get(), false));
    auto has = [&](std::string_view n) { return std::any_of(names.begin(), names.end(), [&](const sys::DirEntry& d) { return d.name == n; }); };
    std::string backend;
    std::vector<std::string> files;
    if (has("rpmdb.sqlite")) {
      backend = "sqlite";
      // The write-ahead log holds committed transactions not yet folded into the database.
      for (const char* f : {"rpmdb.sqlite", "rpmdb.sqlite-wal"})
        if (has(f)) files.emplace_back(f);
    } else if (has("Packages")) {
      backend = "bdb_ro";
      files = {"Packages"};
    } else if (has("Packages.db")) {
      list.source = PackageList::Source::unknown;
      list.database = str(dir, "/Packages.db");
      list.note = str("the rpm database ", list.database, " is in ndb format, which this host's rpm cannot read");
      return list;
    } else {
      continue;
    }
    list.database = str(dir, "/", files.front());
    const std::string rpm = find_rpm();
    if (rpm.empty()) {
      list.source = PackageList::Source::unknown;
      list.note = str("the image has an rpm database (", list.database, ") but this host has no rpm (install the Debian package 'rpm')");
      return list;
    }
    // rpm may write lock files, journals or a rebuilt index into its database directory, and
    // parses the database as root would otherwise: give it a private copy, under a transient uid.
    // As root, rpm runs under a transient uid, which must be able to reach the copy: sqlite
    // resolves the database's real path, so the copy lives in /tmp rather than a possibly
    // private $TMPDIR. The directory is 0700 and owned by that uid alone.
    std::optional<std::uint32_t> id;
    if (::geteuid() == 0) id = TRY(transient_id());
    const char* tmp = id ? nullptr : std::getenv("TMPDIR");
    auto work = TRY(TempDir::create(str(tmp && *tmp ? tmp : "/tmp", "/chrootctl-rpmdb.")));
    for (const auto& f : files) TRY(with_context(copy_db_file(dfd->get(), f, work.path(), id), str("copying ", dir, "/", f)));
    if (id) {
      auto wfd = TRY(sys::open_path(work.path(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      if (::fchown(wfd.get(), *id, *id) != 0) return fail_errno(str("fchown(", quote(work.path()), ", ", *id, ", ", *id, ")"), errno);
    }
    const std::vector<std::string> argv = {rpm,
                                           "--dbpath",
                                           work.path(),
                                           "--define",
                                           "_db_backend " + backend,
                                           "-qa",
                                           "--qf",
                                           "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n"};
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + work.path()};
    auto r = TRY(run_unprivileged(argv, env, work.path(), id.value_or(0)));
    if (r.timed_out || r.status != 0 || r.truncated || r.read_errno) {
      std::string why = r.timed_out    ? std::string("timed out")
                        : r.read_errno ? str("reading its output: ", sys::errno_message(r.read_errno))
                        : r.truncated  ? std::string("it printed more than 64 MiB")
                                       : str("exited with status ", r.status);
      const auto first = r.err.substr(0, r.err.find('\n'));
      if (!first.empty()) why += str(": ", first);
      list.source = PackageList::Source::unknown;
      list.note = str("rpm could not read ", list.database, " (", why, ")");
      return list;
    }
    list.packages = TRY(parse_rpm_query(r.out));
    list.source = PackageList::Source::rpm;
    return list;
  }
  return list;
}

}  // namespace

Result<PackageList> read_packages(const std::string& root) {
  auto rootfd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY | O_NOCTTY));
  auto status = TRY(with_context(open_image_file(rootfd.get(), "var/lib/dpkg/status"), "opening /var/lib/dpkg/status"));
  if (status) {
    auto text = TRY(with_context(sys::read_fd(status->get(), k_status_limit), "reading /var/lib/dpkg/status"));
    PackageList list;
    list.source = PackageList::Source::dpkg;
    list.database = "/var/lib/dpkg/status";
    list.packages = TRY(parse_dpkg_status(text, "/var/lib/dpkg/status"));
    return list;
  }
  return read_rpm(rootfd.get());
}

}  // namespace chrootctl::audit
