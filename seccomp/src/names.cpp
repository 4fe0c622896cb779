// The names a policy may use: system calls (libseccomp's tables), @groups (ours, named and
// mostly filled like systemd's SystemCallFilter= groups) and errno values (glibc's).
#include <seccomp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/seccomp/policy.hpp"

namespace chrootctl::seccomp {

namespace {

// i386's socketcall operations (SYS_SOCKET ... SYS_SENDMMSG) and ipc operations.
constexpr std::string_view k_multiplexed[] = {"socket",  "bind",    "connect",  "listen",   "accept",   "getsockname", "getpeername", "socketpair",
                                              "send",    "recv",    "sendto",   "recvfrom", "shutdown", "setsockopt",  "getsockopt",  "sendmsg",
                                              "recvmsg", "accept4", "recvmmsg", "sendmmsg", "semop",    "semget",      "semctl",      "semtimedop",
                                              "msgsnd",  "msgrcv",  "msgget",   "msgctl",   "shmat",    "shmdt",       "shmget",      "shmctl"};

}  // namespace

const std::vector<Group>& groups() {
  // The x86 members of systemd's groups of the same names (and @io-uring and @namespaces, which
  // systemd has not); libseccomp knows every one (tests/unit/seccomp_policy_test.cpp checks).
  static const std::vector<Group> k_groups = {
      {"@aio",
       "asynchronous I/O, io_uring included",
       {"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "io_uring_enter",
        "io_uring_register", "io_uring_setup"}},
      {"@basic-io",
       "reading, writing, seeking and closing descriptors",
       {"_llseek", "close", "close_range", "dup", "dup2", "dup3", "lseek", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
        "readv", "write", "writev"}},
      {"@chown", "changing the owner of files", {"chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32"}},
      {"@clock",
       "setting the system clock",
       {"adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime"}},
      {"@cpu-emulation", "CPU emulation", {"modify_ldt", "vm86", "vm86old"}},
      {"@debug",
       "debugging, tracing and performance monitoring",
       {"lookup_dcookie", "perf_event_open", "pidfd_getfd", "ptrace", "process_vm_readv", "process_vm_writev"}},
      {"@io-uring", "io_uring", {"io_uring_enter", "io_uring_register", "io_uring_setup"}},
      {"@keyring", "the kernel's key rings", {"add_key", "keyctl", "request_key"}},
      {"@memlock", "locking memory", {"mlock", "mlock2", "mlockall", "munlock", "munlockall"}},
      {"@module", "loading and unloading kernel modules", {"delete_module", "finit_module", "init_module"}},
      {"@mount",
       "mounting, unmounting and changing the root",
       {"chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount", "open_tree", "pivot_root", "umount", "umount2"}},
      {"@namespaces", "joining and making namespaces (clone and unshare are checked by flag in the default policy)", {"setns", "unshare"}},
      {"@obsolete",
       "obsolete or unimplemented calls",
       {"_sysctl",  "afs_syscall", "bdflush", "break", "create_module", "ftime",   "get_kernel_syms", "getpmsg",  "gtty",
        "idle",     "lock",        "mpx",     "prof",  "profil",        "putpmsg", "query_module",    "security", "sgetmask",
        "ssetmask", "stime",       "stty",    "sysfs", "tuxcall",       "ulimit",  "uselib",          "ustat",    "vserver"}},
      {"@pkey", "memory protection keys", {"pkey_alloc", "pkey_free", "pkey_mprotect"}},
      {"@raw-io", "raw I/O ports", {"ioperm", "iopl"}},
      {"@reboot", "rebooting and kexec", {"kexec_file_load", "kexec_load", "reboot"}},
      {"@swap", "enabling and disabling swap", {"swapoff", "swapon"}},
      {"@sync", "flushing files to storage", {"fdatasync", "fsync", "msync", "sync", "sync_file_range", "syncfs"}},
  };
  return k_groups;
}

const Group* find_group(std::string_view name) {
  for (const auto& g : groups())
    if (g.name == name) return &g;
  return nullptr;
}

const std::vector<std::string>& known_syscalls() {
  static const std::vector<std::string> k_names = [] {
    std::set<std::string> names;
    const std::uint32_t arches[] = {SCMP_ARCH_X86_64, SCMP_ARCH_X86};
    for (const std::uint32_t arch : arches) {
      // Both tables are well below 1024 entries; numbers without a call resolve to nothing.
      for (int nr = 0; nr < 1024; ++nr) {
        std::unique_ptr<char, decltype(&std::free)> n(seccomp_syscall_resolve_num_arch(arch, nr), &std::free);
        if (n) names.insert(n.get());
      }
    }
    for (auto m : k_multiplexed) names.insert(std::string(m));
    return std::vector<std::string>(names.begin(), names.end());
  }();
  return k_names;
}

bool is_known_syscall(std::string_view name) {
  const auto& k = known_syscalls();
  return std::binary_search(k.begin(), k.end(), name, [](const auto& a, const auto& b) { return std::string_view(a) < std::string_view(b); });
}

bool is_i386_multiplexed(std::string_view name) {
  return std::find(std::begin(k_multiplexed), std::end(k_multiplexed), name) != std::end(k_multiplexed);
}

namespace {
const std::vector<std::pair<std::string, int>>& errno_table() {
  static const std::vector<std::pair<std::string, int>> k_table = [] {
    std::vector<std::pair<std::string, int>> t;
    for (int e = 1; e < 4096; ++e)
      if (const char* n = ::strerrorname_np(e)) t.emplace_back(n, e);
    return t;
  }();
  return k_table;
}
}  // namespace

std::optional<int> errno_by_name(std::string_view name) {
  for (const auto& [n, v] : errno_table())
    if (n == name) return v;
  return std::nullopt;
}

std::string errno_label(int value) {
  if (const char* n = ::strerrorname_np(value)) return n;
  return std::to_string(value);
}

}  // namespace chrootctl::seccomp
