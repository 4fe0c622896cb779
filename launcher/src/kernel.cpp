#include "kernel.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_move_mount
#define __NR_move_mount 429
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif

namespace chrootctl::launcher::kernel {

namespace {
// struct mount_attr and struct clone_args as the kernel defines them (linux/mount.h,
// linux/sched.h); spelled out so that the launcher builds against old and new headers alike.
struct MountAttr {
  std::uint64_t attr_set;
  std::uint64_t attr_clr;
  std::uint64_t propagation;
  std::uint64_t userns_fd;
};
struct CloneArgs {
  std::uint64_t flags;
  std::uint64_t pidfd;
  std::uint64_t child_tid;
  std::uint64_t parent_tid;
  std::uint64_t exit_signal;
  std::uint64_t stack;
  std::uint64_t stack_size;
  std::uint64_t tls;
  std::uint64_t set_tid;
  std::uint64_t set_tid_size;
  std::uint64_t cgroup;
};
constexpr std::uint64_t k_clone_into_cgroup = 0x200000000ULL;
constexpr unsigned k_at_recursive = 0x8000;
constexpr unsigned k_open_tree_clone = 1;
constexpr unsigned k_move_mount_f_empty_path = 0x4;
constexpr unsigned k_move_mount_t_empty_path = 0x40;

std::string attrs_label(std::uint64_t set) {
  std::string out;
  for (const auto& [bit, name] : {std::pair{k_attr_rdonly, "RDONLY"}, std::pair{k_attr_nosuid, "NOSUID"}, std::pair{k_attr_nodev, "NODEV"},
                                  std::pair{k_attr_noexec, "NOEXEC"}, std::pair{k_attr_idmap, "IDMAP"}})
    if (set & bit) out += str(out.empty() ? "" : "|", name);
  return out.empty() ? "0" : out;
}
}  // namespace

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string mount_flags_label(unsigned long flags) {
  static const struct {
    unsigned long bit;
    const char* name;
  } k_names[] = {{MS_RDONLY, "MS_RDONLY"},         {MS_NOSUID, "MS_NOSUID"},    {MS_NODEV, "MS_NODEV"},   {MS_NOEXEC, "MS_NOEXEC"},
                 {MS_REMOUNT, "MS_REMOUNT"},       {MS_BIND, "MS_BIND"},        {MS_MOVE, "MS_MOVE"},     {MS_REC, "MS_REC"},
                 {MS_PRIVATE, "MS_PRIVATE"},       {MS_SLAVE, "MS_SLAVE"},      {MS_SHARED, "MS_SHARED"}, {MS_NOATIME, "MS_NOATIME"},
                 {MS_NODIRATIME, "MS_NODIRATIME"}, {MS_RELATIME, "MS_RELATIME"}};
  std::string out;
  for (const auto& n : k_names) {
    if (flags & n.bit) {
      if (!out.empty()) out += '|';
      out += n.name;
      flags &= ~n.bit;
    }
  }
  if (flags) out += str(out.empty() ? "" : "|", "0x", hex_number(flags));
  return out.empty() ? "0" : out;
}

Status mount(const char* source, const std::string& target, const char* fstype, unsigned long flags, const char* data, std::string_view source_label,
             std::string_view target_label) {
  if (sys::retry_eintr([&] { return ::mount(source, target.c_str(), fstype, flags, data); }) != 0) {
    const int err = errno;
    std::string call = str("mount(", quote(source_label), ", ", quote(target_label), ", ");
    if (fstype) call += str(fstype, ", ");
    call += mount_flags_label(flags);
    if (data && *data) call += str(", ", quote(data));
    call += ")";
    if (err == EPERM) return fail_errno(call, err, "run as root");
    return fail_errno(call, err);
  }
  return {};
}

Status mount_setattr(int fd, bool recursive, const MountAttrs& attrs, std::string_view label) {
  MountAttr attr{};
  attr.attr_set = attrs.set;
  attr.propagation = attrs.make_private ? MS_PRIVATE : 0;
  if (attrs.set & k_attr_idmap) attr.userns_fd = static_cast<std::uint64_t>(attrs.userns_fd);
  const unsigned flags = AT_EMPTY_PATH | (recursive ? k_at_recursive : 0u);
  if (sys::retry_eintr([&] { return ::syscall(__NR_mount_setattr, fd, "", flags, &attr, sizeof attr); }) != 0) {
    const int err = errno;
    if (err == ENOSYS) return fail(Errc::unsupported, "mount_setattr is not available (Linux 5.12 or later)");
    return fail_errno(str("mount_setattr(", quote(label), recursive ? ", AT_RECURSIVE" : "", ", ", attrs_label(attrs.set),
                          attrs.make_private ? ", MS_PRIVATE" : "", ")"),
                      err);
  }
  return {};
}

Result<Fd> open_tree_clone(int dirfd, bool recursive, std::string_view label) {
  const unsigned flags = AT_EMPTY_PATH | k_open_tree_clone | O_CLOEXEC | (recursive ? k_at_recursive : 0u);
  const long fd = sys::retry_eintr([&] { return ::syscall(__NR_open_tree, dirfd, "", flags); });
  if (fd < 0) {
    const int err = errno;
    if (err == ENOSYS) return fail(Errc::unsupported, "open_tree is not available (Linux 5.2 or later)");
    return fail_errno(str("open_tree(", quote(label), ", OPEN_TREE_CLONE", recursive ? "|AT_RECURSIVE" : "", ")"), err);
  }
  return Fd(static_cast<int>(fd));
}

Status move_mount(int from, int to, std::string_view source_label, std::string_view target_label) {
  const unsigned flags = k_move_mount_f_empty_path | k_move_mount_t_empty_path;
  if (sys::retry_eintr([&] { return ::syscall(__NR_move_mount, from, "", to, "", flags); }) != 0)
    return fail_errno(str("move_mount(", quote(source_label), ", ", quote(target_label), ")"), errno);
  return {};
}

bool has_mount_api() {
  // With an invalid descriptor a kernel that has the call fails otherwise than with ENOSYS.
  // (mount_setattr must be asked to change something: with nothing to do it succeeds at once.)
  MountAttr attr{};
  attr.attr_set = k_attr_rdonly;
  auto present = [](long r) { return r < 0 && errno != ENOSYS; };
  return present(::syscall(__NR_mount_setattr, -1, "", AT_EMPTY_PATH, &attr, sizeof attr)) &&
         present(::syscall(__NR_open_tree, -1, "", AT_EMPTY_PATH)) && present(::syscall(__NR_move_mount, -1, "", -1, "", k_move_mount_f_empty_path));
}

// Each probe passes arguments the kernel refuses before it acts: EINVAL or EBADF from a kernel
// that has the call, ENOSYS from one that does not (or a filter that pretends so).
bool has_openat2() {
  return ::syscall(__NR_openat2, -1, "", nullptr, 0) < 0 && errno != ENOSYS;  // size 0: EINVAL
}

bool has_clone3() {
  return ::syscall(__NR_clone3, nullptr, 0) < 0 && errno != ENOSYS;  // size 0: EINVAL
}

bool has_close_range() {
  return ::syscall(__NR_close_range, 2u, 1u, 0u) < 0 && errno != ENOSYS;  // first > last: EINVAL
}

Status unshare(int flags, std::string_view label) {
  if (::unshare(flags) != 0) {
    const int err = errno;
    if (err == EPERM) return fail_errno(str("unshare(", label, ")"), err, "run as root");
    return fail_errno(str("unshare(", label, ")"), err);
  }
  return {};
}

Status umount_detach(const std::string& target, std::string_view label) {
  if (sys::retry_eintr([&] { return ::umount2(target.c_str(), MNT_DETACH); }) != 0)
    return fail_errno(str("umount2(", quote(label), ", MNT_DETACH)"), errno);
  return {};
}

Status pivot_root_here() {
  // pivot_root(".", ".") stacks the old root on top of the new one; the caller then detaches
  // it. No directory for the old root is needed, so nothing is written into the image.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return fail_errno("pivot_root(\".\", \".\")", errno);
  return {};
}

Result<pid_t> start_child(std::uint64_t flags, int cgroup_fd) {
  CloneArgs args{};
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= k_clone_into_cgroup;
    args.cgroup = static_cast<std::uint64_t>(cgroup_fd);
  }
  auto failed = [](std::string call, int e) { return e == EPERM ? fail_errno(std::move(call), e, "run as root") : fail_errno(std::move(call), e); };
  // No stack: the child goes on on a copy of this one, as after fork(2).
  const long pid = ::syscall(__NR_clone3, &args, sizeof args);
  if (pid >= 0) return static_cast<pid_t>(pid);
  const int err = errno;
  if (err != ENOSYS && err != E2BIG)
    return failed(str("clone3(flags 0x", hex_number(args.flags), cgroup_fd >= 0 ? ", CLONE_INTO_CGROUP" : "", ")"), err);
  if (cgroup_fd >= 0) return fail(Errc::unsupported, "clone3 with CLONE_INTO_CGROUP is not available (Linux 5.7 or later)");
  // Kernels before 5.3: clone(2), with the same fork-like semantics.
  const long old = ::syscall(SYS_clone, static_cast<unsigned long>(flags) | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (old >= 0) return static_cast<pid_t>(old);
  return failed(str("clone(flags 0x", hex_number(flags), ")"), errno);
}

Result<pid_t> fork_process() {
  const pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork()", errno);
  return pid;
}

namespace {
// The fields of a /proc/PID/stat text from field 3 (state) on: the command name (field 2) may
// hold spaces and parentheses, so fields resume after the last ')'. Empty if malformed.
std::vector<std::string> stat_fields_from_state(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 > text.size()) return {};
  return split(text.substr(close + 2), ' ');
}
}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  auto text = sys::read_file(str("/proc/", pid, "/stat"), 4096);
  if (!text) return std::nullopt;
  const auto fields = stat_fields_from_state(*text);
  if (fields.size() < 20) return std::nullopt;
  return parse_u64(fields[19]);  // field 22
}

Result<SelfStat> self_stat() {
  auto text = TRY(sys::read_file("/proc/self/stat", 4096));
  const auto fields = stat_fields_from_state(text);
  if (fields.size() < 20) return fail(Errc::parse, "/proc/self/stat: too few fields");
  const auto threads = parse_u64(fields[17]);  // field 20
  const auto start = parse_u64(fields[19]);    // field 22
  if (!threads || !start) return fail(Errc::parse, "/proc/self/stat: a field is not a number");
  return SelfStat{static_cast<long>(*threads), *start};
}

Result<long> thread_count() { return TRY(self_stat()).threads; }

void close_fds_except(std::vector<int> keep) {
  // close_range over the gaps between the descriptors to keep (all >= 3).
  std::sort(keep.begin(), keep.end());
  unsigned next = 3;
  bool ok = true;
  for (int k : keep) {
    if (k < 3) continue;
    const auto u = static_cast<unsigned>(k);
    if (u > next && ::syscall(__NR_close_range, next, u - 1, 0u) != 0) ok = false;
    next = u + 1;
  }
  if (ok && ::syscall(__NR_close_range, next, ~0u, 0u) == 0) return;
  // Before Linux 5.9: close what /proc/self/fd lists (collected first; closing while reading
  // the directory would skip entries).
  if (DIR* d = ::opendir("/proc/self/fd")) {
    std::vector<int> fds;
    const int self = ::dirfd(d);
    while (const dirent* e = ::readdir(d)) {
      auto n = parse_u64(e->d_name);
      if (!n) continue;
      const int fd = static_cast<int>(*n);
      if (fd >= 3 && fd != self && std::find(keep.begin(), keep.end(), fd) == keep.end()) fds.push_back(fd);
    }
    ::closedir(d);
    for (int fd : fds) ::close(fd);
  }
}

void write_message(int fd, const void* data, std::size_t size) {
  (void)sys::retry_eintr([&] { return ::write(fd, data, size); });
}

Status send_fds(int sock, const std::vector<int>& fds) {
  char byte = 1;
  struct iovec iov {
    &byte, 1
  };
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c) return fail(Errc::internal, "sendmsg: no room for the descriptors");
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (sys::retry_eintr([&] { return ::sendmsg(sock, &msg, MSG_NOSIGNAL); }) != 1)
    return fail_errno(str("sendmsg(", fds.size(), " descriptors)"), errno);
  return {};
}

Result<std::optional<std::vector<Fd>>> receive_fds(int sock, std::size_t count) {
  char byte = 0;
  struct iovec iov {
    &byte, 1
  };
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<std::size_t>(count, 1)));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t n = sys::retry_eintr([&] { return ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); });
  if (n < 0) return fail_errno("recvmsg", errno);
  std::vector<Fd> out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.emplace_back(fd);
    }
  }
  if (n == 0) return std::optional<std::vector<Fd>>();
  if (msg.msg_flags & MSG_CTRUNC) return fail(Errc::io, "recvmsg: descriptors were truncated");
  if (out.size() != count) return fail(Errc::io, str("recvmsg: expected ", count, " descriptors, got ", out.size()));
  return std::optional<std::vector<Fd>>(std::move(out));
}

Result<std::uint64_t> filesystem_type(int fd) {
  struct statfs sf {};
  if (sys::retry_eintr([&] { return ::fstatfs(fd, &sf); }) != 0) return fail_errno("fstatfs", errno);
  return static_cast<std::uint64_t>(sf.f_type);
}

KernelVersion kernel_version() {
  struct utsname u {};
  if (::uname(&u) != 0) return {};
  KernelVersion v;
  const auto parts = split(u.release, '.');
  if (parts.size() >= 2) {
    auto digits = [](const std::string& s) {
      std::size_t n = 0;
      while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
      return parse_u64(s.substr(0, n)).value_or(0);
    };
    v.major = static_cast<int>(digits(parts[0]));
    v.minor = static_cast<int>(digits(parts[1]));
  }
  return v;
}

Status write_proc_file(pid_t pid, const char* file, std::string_view text) {
  const std::string path = str("/proc/", pid, "/", file);
  Fd fd = TRY(sys::open_path(path, O_WRONLY | O_NOFOLLOW));
  const ssize_t n = sys::retry_eintr([&] { return ::write(fd.get(), text.data(), text.size()); });
  if (n != static_cast<ssize_t>(text.size()))
    return fail_errno(str("write(", quote(path), ", ", quote(escape_for_display(text)), ")"), n < 0 ? errno : EIO);
  return {};
}

Result<Fd> make_user_namespace(std::string_view uid_map, std::string_view gid_map) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe2(O_CLOEXEC)", errno);
  Fd wait_read(p[0]), wait_write(p[1]);
  const pid_t pid = TRY(start_child(CLONE_NEWUSER, -1));
  if (pid == 0) {
    // The child only holds the namespace until the launcher has opened it: it waits for the
    // pipe to close, touching nothing else of the copied memory.
    ::close(p[1]);
    char c;
    (void)!::read(p[0], &c, 1);
    ::_exit(0);
  }
  wait_read.reset();
  auto opened = [&]() -> Result<Fd> {
    TRY(write_proc_file(pid, "uid_map", uid_map));
    TRY(write_proc_file(pid, "gid_map", gid_map));
    return sys::open_path(str("/proc/", pid, "/ns/user"), O_RDONLY);
  }();
  wait_write.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return with_context(std::move(opened), "making a user namespace for an idmapped mount");
}

}  // namespace chrootctl::launcher::kernel
