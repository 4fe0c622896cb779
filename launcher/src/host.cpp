// What this host offers a launch (host.hpp), for `chrootctl doctor`: the launcher's own probes
// and rules, never a second copy of them.
#include "chrootctl/launcher/host.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "chrootctl/launcher/mountinfo.hpp"
#include "kernel.hpp"

namespace chrootctl::launcher::host {

namespace {

std::optional<std::uint64_t> read_number(const char* path) {
  auto text = sys::read_file(path, 4096);
  if (!text) return std::nullopt;
  return parse_u64(trim(*text));
}

// Runs `probe` in a forked child and returns 0 or the errno it exited with (-1: the child
// could not be started or died otherwise). The child touches nothing of the parent's.
int in_child(int (*probe)()) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) ::_exit(probe());
  int status = 0;
  if (sys::retry_eintr([&] { return ::waitpid(pid, &status, 0); }) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int try_user_namespace() { return ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno; }

int try_user_namespace_as_nobody() {
  const gid_t none = 65534;
  if (::setgroups(0, nullptr) != 0 || ::setresgid(none, none, none) != 0 || ::setresuid(none, none, none) != 0) return 200;
  return try_user_namespace();
}

int try_filter() {
  sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  sock_fprog prog{1, allow};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0 ? 0 : errno;
}

std::string child_error(int code, const char* call) {
  if (code == 0) return {};
  if (code < 0) return str("the probe of ", call, " did not finish");
  if (code == 200) return "could not become uid 65534 to try";
  return str(call, ": ", std::strerror(code));
}

}  // namespace

Kernel kernel() {
  Kernel k;
  struct utsname u {};
  if (::uname(&u) == 0) {
    k.release = u.release;
    k.machine = u.machine;
  }
  const auto v = kernel::kernel_version();
  k.major = v.major;
  k.minor = v.minor;
  return k;
}

Syscalls syscalls() {
  Syscalls s;
  s.openat2 = kernel::has_openat2();
  s.mount_api = kernel::has_mount_api();
  s.clone3 = kernel::has_clone3();
  s.close_range = kernel::has_close_range();
  return s;
}

UserNamespaces user_namespaces() {
  UserNamespaces u;
  u.max_user_namespaces = read_number("/proc/sys/user/max_user_namespaces");
  u.unprivileged_clone = read_number("/proc/sys/kernel/unprivileged_userns_clone");
  u.apparmor_restricted = read_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  const int caller = in_child(try_user_namespace);
  u.as_caller = caller == 0;
  u.caller_error = child_error(caller, "unshare(CLONE_NEWUSER)");
  if (::geteuid() == 0) {
    const int user = in_child(try_user_namespace_as_nobody);
    u.as_user = user == 0;
    u.user_error = child_error(user, "unshare(CLONE_NEWUSER) as uid 65534");
  }
  return u;
}

Seccomp seccomp() {
  Seccomp s;
  const int r = in_child(try_filter);
  s.usable = r == 0;
  s.error = child_error(r, "seccomp(SECCOMP_SET_MODE_FILTER)");
  return s;
}

Result<std::vector<std::pair<std::string, std::uint64_t>>> filesystems_below(int fd, const std::string& path) {
  // Not TRY inside the braced list: clang leaks its built members when it returns early there
  // (common/error.hpp).
  const std::uint64_t root_type = TRY(kernel::filesystem_type(fd));
  std::vector<std::pair<std::string, std::uint64_t>> out{{path, root_type}};
  const std::string real = TRY(sys::readlink_at(AT_FDCWD, kernel::fd_path(fd)));
  const std::string table = TRY(sys::read_file("/proc/self/mountinfo"));
  std::vector<std::string> below;
  for_each_mount(table, [&](const MountInfoFields& m) {
    std::string point = unescape_mountinfo(m.mount_point);
    if (point.size() > real.size() && path_is_under(point, real)) below.push_back(std::move(point));
  });
  for (const auto& p : below) {
    Fd sub = TRY(sys::open_path(p, O_PATH | O_NOFOLLOW));
    out.emplace_back(p, TRY(kernel::filesystem_type(sub.get())));
  }
  return out;
}

Result<IdPlan> id_plan(const std::string& image, const std::optional<std::string>& sandbox) {
  IdPlan plan;
  Fd image_fd = TRY(sys::open_path(image, O_PATH | O_DIRECTORY));
  plan.image_filesystems = TRY(filesystems_below(image_fd.get(), image));
  IdFacts facts;
  facts.unprivileged = ::geteuid() != 0;
  facts.mount_api = !facts.unprivileged && kernel::has_mount_api();
  const auto v = kernel::kernel_version();
  facts.kernel_major = v.major;
  facts.kernel_minor = v.minor;
  facts.image = image;
  facts.image_filesystems = plan.image_filesystems;
  plan.user_job = decide_ids(facts);
  facts.root_job = true;
  if (sandbox) {
    Fd sandbox_fd = TRY(sys::open_path(*sandbox, O_PATH | O_DIRECTORY));
    const std::uint64_t sandbox_type = TRY(kernel::filesystem_type(sandbox_fd.get()));
    plan.sandbox_filesystem = std::pair{*sandbox, sandbox_type};
    facts.owner_mapped.push_back(*plan.sandbox_filesystem);
  }
  plan.root_job = decide_ids(facts);
  return plan;
}

}  // namespace chrootctl::launcher::host
