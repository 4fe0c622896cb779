#include "kernel.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <utility>
#include <vector>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
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
}  // namespace

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string mount_flags_label(unsigned long flags) {
  static const struct {
    unsigned long bit;
    const char* name;
  } k_names[] = {{MS_RDONLY, "MS_RDONLY"},   {MS_NOSUID, "MS_NOSUID"},   {MS_NODEV, "MS_NODEV"},
                 {MS_NOEXEC, "MS_NOEXEC"},   {MS_REMOUNT, "MS_REMOUNT"}, {MS_BIND, "MS_BIND"},
                 {MS_MOVE, "MS_MOVE"},       {MS_REC, "MS_REC"},         {MS_PRIVATE, "MS_PRIVATE"},
                 {MS_SLAVE, "MS_SLAVE"},     {MS_SHARED, "MS_SHARED"},   {MS_NOATIME, "MS_NOATIME"},
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

Status mount(const char* source, const std::string& target, const char* fstype, unsigned long flags, const char* data,
             std::string_view source_label, std::string_view target_label) {
  if (sys::retry_eintr([&] { return ::mount(source, target.c_str(), fstype, flags, data); }) != 0) {
    const int err = errno;
    std::string call = str("mount(", quote(source_label), ", ", quote(target_label), ", ");
    if (fstype) call += str(fstype, ", ");
    call += mount_flags_label(flags);
    if (data && *data) call += str(", ", quote(data));
    call += ")";
    if (err == EPERM) return fail_errno(call, err, "run as root, or use --unprivileged");
    return fail_errno(call, err);
  }
  return {};
}

Status mount_setattr(int fd, bool recursive, std::uint64_t attr_set, std::string_view label) {
  MountAttr attr{};
  attr.attr_set = attr_set;
  const unsigned flags = AT_EMPTY_PATH | (recursive ? k_at_recursive : 0u);
  if (sys::retry_eintr([&] { return ::syscall(__NR_mount_setattr, fd, "", flags, &attr, sizeof attr); }) != 0) {
    const int err = errno;
    if (err == ENOSYS) return fail(Errc::unsupported, "mount_setattr is not available (Linux 5.12 or later)");
    std::string attrs;
    if (attr_set & k_attr_rdonly) attrs += "RDONLY|";
    if (attr_set & k_attr_nosuid) attrs += "NOSUID|";
    if (attr_set & k_attr_nodev) attrs += "NODEV|";
    if (attr_set & k_attr_noexec) attrs += "NOEXEC|";
    if (!attrs.empty()) attrs.pop_back();
    return fail_errno(str("mount_setattr(", quote(label), recursive ? ", AT_RECURSIVE" : "", ", ", attrs, ")"), err);
  }
  return {};
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

Result<ChildStack> ChildStack::make(std::size_t size) {
  // A guard page below the stack, so an overflow faults instead of writing into other memory.
  constexpr std::size_t k_guard = 4096;
  void* area = ::mmap(nullptr, k_guard + size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (area == MAP_FAILED) return fail_errno(str("mmap(a child's stack, ", size, " bytes)"), errno);
  ChildStack s;
  s.m_area = area;
  s.m_length = k_guard + size;
  s.m_base = static_cast<char*>(area) + k_guard;
  s.m_size = size;
  if (::mprotect(s.m_base, size, PROT_READ | PROT_WRITE) != 0) return fail_errno("mprotect(a child's stack)", errno);
  return s;
}

ChildStack::ChildStack(ChildStack&& other) noexcept
    : m_area(std::exchange(other.m_area, nullptr)), m_length(other.m_length), m_base(other.m_base), m_size(other.m_size) {}

ChildStack::~ChildStack() {
  if (m_area) ::munmap(m_area, m_length);
}

#if defined(__x86_64__)
// clone3 whose child calls fn(arg) on the stack the arguments name and then exits with its
// result, as glibc's clone() does for clone(2): after the system call the child's stack is
// the new one, so no compiled code of the caller may run in it. fn and arg are carried in r8
// and r9, which the system call preserves; the kernel sets the child's rsp to the (16-byte
// aligned) top of the stack, so the call leaves it aligned as the ABI requires.
// Returns the child's pid or -errno.
extern "C" long chrootctl_clone3_calling(void* args, std::size_t size, int (*fn)(void*), void* arg);
asm(R"(
    .pushsection .text
    .p2align 4
    .type chrootctl_clone3_calling, @function
chrootctl_clone3_calling:
    mov %rdx, %r8
    mov %rcx, %r9
    mov $435, %eax
    syscall
    test %rax, %rax
    jnz 1f
    xor %ebp, %ebp
    mov %r9, %rdi
    call *%r8
    mov %eax, %edi
    mov $60, %eax
    syscall
    hlt
1:
    ret
    .size chrootctl_clone3_calling, .-chrootctl_clone3_calling
    .popsection
)");
#endif

Result<Started> start_child(std::uint64_t flags, int cgroup_fd, const ChildStack& stack, int (*fn)(void*), void* arg,
                            bool share_memory) {
#if defined(__x86_64__)
  const bool shared = share_memory;
#else
  const bool shared = false;  // the clone3 trampoline is written for x86-64 only
  (void)share_memory;
#endif
  CloneArgs args{};
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= k_clone_into_cgroup;
    args.cgroup = static_cast<std::uint64_t>(cgroup_fd);
  }
  long pid = 0;
  int err = 0;
#if defined(__x86_64__)
  if (shared) {
    args.flags |= CLONE_VM;
    args.stack = reinterpret_cast<std::uint64_t>(stack.base());
    args.stack_size = stack.size();
    pid = chrootctl_clone3_calling(&args, sizeof args, fn, arg);
    if (pid >= 0) return Started{static_cast<pid_t>(pid), true};
    err = static_cast<int>(-pid);
  }
#endif
  if (!shared) {
    pid = ::syscall(__NR_clone3, &args, sizeof args);
    if (pid == 0) ::_exit(fn(arg));
    if (pid > 0) return Started{static_cast<pid_t>(pid), false};
    err = errno;
  }
  auto failed = [](std::string call, int e) {
    return e == EPERM ? fail_errno(std::move(call), e, "run as root, or use --unprivileged") : fail_errno(std::move(call), e);
  };
  if (err != ENOSYS && err != E2BIG)
    return failed(str("clone3(flags 0x", hex_number(args.flags), cgroup_fd >= 0 ? ", CLONE_INTO_CGROUP" : "", ")"), err);
  if (cgroup_fd >= 0) return fail(Errc::unsupported, "clone3 with CLONE_INTO_CGROUP is not available (Linux 5.7 or later)");
  // Kernels before 5.3: clone(2).
  if (shared) {
    pid = ::clone(fn, stack.base() + stack.size(), static_cast<int>(flags) | CLONE_VM | SIGCHLD, arg);
    if (pid >= 0) return Started{static_cast<pid_t>(pid), true};
  } else {
    pid = ::syscall(SYS_clone, static_cast<unsigned long>(flags) | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (pid == 0) ::_exit(fn(arg));
    if (pid > 0) return Started{static_cast<pid_t>(pid), false};
  }
  const int clone_err = errno;
  return failed(str("clone(flags 0x", hex_number(flags), ")"), clone_err);
}

CpuPin::CpuPin() {
  if (::sched_getaffinity(0, sizeof m_original, &m_original) != 0 || CPU_COUNT(&m_original) < 2) return;
  const int here = ::sched_getcpu();
  if (here < 0 || here >= CPU_SETSIZE || !CPU_ISSET(here, &m_original)) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(here, &one);
  m_pinned = ::sched_setaffinity(0, sizeof one, &one) == 0;
}

CpuPin::~CpuPin() {
  if (m_pinned) ::sched_setaffinity(0, sizeof m_original, &m_original);
}

bool has_effective_capability(int cap) {
  struct __user_cap_header_struct header {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] {};
  if (::syscall(SYS_capget, &header, data) != 0 || cap < 0 || cap >= 64) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

Result<pid_t> spawn_sharing_memory(int (*fn)(void*), void* arg) {
  ChildStack stack = TRY(ChildStack::make(256 * 1024));
  const pid_t pid = ::clone(fn, stack.base() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
  // The child has exec'd or exited by now: its stack is ours again (unmapped on return).
  if (pid < 0) return fail_errno("clone(CLONE_VM|CLONE_VFORK)", errno);
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
  if (fields.size() < 31) return fail(Errc::parse, "/proc/self/stat: too few fields");
  const auto threads = parse_u64(fields[17]);       // field 20
  const auto start = parse_u64(fields[19]);         // field 22
  const auto ignored = parse_u64(fields[30]);       // field 33, sigignore
  if (!threads || !start || !ignored) return fail(Errc::parse, "/proc/self/stat: a field is not a number");
  return SelfStat{static_cast<long>(*threads), *start, *ignored};
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

}  // namespace chrootctl::launcher::kernel
