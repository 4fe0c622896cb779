// Namespaces: the flags a launch clones with, the user namespace's identity mapping, and the
// loopback interface of a private network namespace.
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "internal.hpp"

namespace chrootctl::launcher::detail {

namespace {
Status write_proc(pid_t pid, const char* file, const std::string& text) {
  const std::string path = str("/proc/", pid, "/", file);
  auto fd = TRY(sys::open_path(path, O_WRONLY));
  const ssize_t n = sys::retry_eintr([&] { return ::write(fd.get(), text.data(), text.size()); });
  if (n < 0) return fail_errno(str("write(", quote(path), ", ", quote(text), ")"), errno);
  return {};
}
}  // namespace

Status map_caller(pid_t pid, uid_t uid, gid_t gid) {
  // An unprivileged process may map only its own ids, and gid_map only once setgroups(2) is
  // denied (otherwise dropping a group could grant access that a negative ACL denies).
  TRY(write_proc(pid, "setgroups", "deny"));
  TRY(write_proc(pid, "uid_map", str(uid, " ", uid, " 1\n")));
  TRY(write_proc(pid, "gid_map", str(gid, " ", gid, " 1\n")));
  return {};
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
