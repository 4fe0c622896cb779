// Namespaces: the id maps of the job's user namespace (written by the launcher), and the
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
#include "kernel.hpp"

namespace chrootctl::launcher::detail {

Status write_id_maps(pid_t pid, const IdMaps& maps, bool deny_setgroups) {
  // An unprivileged writer may map only its own ids, and gid_map only once setgroups(2) is
  // denied (otherwise dropping a group could grant access that a negative ACL denies). A
  // privileged launcher leaves setgroups allowed: the job takes on its supplementary groups.
  if (deny_setgroups) TRY(kernel::write_proc_file(pid, "setgroups", "deny"));
  TRY(kernel::write_proc_file(pid, "uid_map", id_map_text(maps.uid)));
  TRY(kernel::write_proc_file(pid, "gid_map", id_map_text(maps.gid)));
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
