// Namespaces: the flags a launch clones with, the user namespace's identity mapping, and the
// loopback interface of a private network namespace.
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "internal.hpp"

namespace chrootctl::launcher::detail {

namespace {
// Formats and writes without allocating: the launcher calls this while init runs in its memory.
int write_proc(pid_t pid, const char* file, const char* text) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), file);
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno;
  const std::size_t len = std::strlen(text);
  const ssize_t n = sys::retry_eintr([&] { return ::write(fd, text, len); });
  const int err = n < 0 ? errno : n != static_cast<ssize_t>(len) ? EIO : 0;
  ::close(fd);
  return err;
}
}  // namespace

IdMapFailure map_caller(pid_t pid, uid_t uid, gid_t gid) {
  // An unprivileged process may map only its own ids, and gid_map only once setgroups(2) is
  // denied (otherwise dropping a group could grant access that a negative ACL denies).
  char uid_map[64], gid_map[64];
  std::snprintf(uid_map, sizeof uid_map, "%u %u 1\n", static_cast<unsigned>(uid), static_cast<unsigned>(uid));
  std::snprintf(gid_map, sizeof gid_map, "%u %u 1\n", static_cast<unsigned>(gid), static_cast<unsigned>(gid));
  for (const auto& [file, text] : {std::pair{"setgroups", "deny"}, std::pair{"uid_map", static_cast<const char*>(uid_map)},
                                   std::pair{"gid_map", static_cast<const char*>(gid_map)}})
    if (const int err = write_proc(pid, file, text); err != 0) {
      IdMapFailure f;
      f.file = file;
      std::snprintf(f.text, sizeof f.text, "%s", text);
      f.err = err;
      return f;
    }
  return {};
}

Error IdMapFailure::error(pid_t pid) const {
  return fail_errno(str("write(", quote(str("/proc/", pid, "/", file)), ", ", quote(text), ")"), err).value();
}

Status loopback_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail_errno("socket(AF_INET, SOCK_DGRAM)", errno);
  Fd sock(s);
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return fail_errno("ioctl(SIOCGIFFLAGS, 'lo')", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return fail_errno("ioctl(SIOCSIFFLAGS, 'lo', IFF_UP)", errno);
  return {};
}

}  // namespace chrootctl::launcher::detail
