// The system-call filter on the launch path: reading a cached, precompiled program and
// installing it. Compiling a policy is chrootctl-full's work (seccomp/); nothing here parses a
// policy or links libseccomp.
#include "chrootctl/launcher/seccomp_program.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::launcher {

namespace {

constexpr std::size_t k_max_file = sizeof(SeccompFileHeader) + k_seccomp_max_instructions * sizeof(sock_filter);

// Whoever can write the program decides which system calls a job may make: as root, only root
// may have written it; otherwise root or the caller.
Status check_owner(const struct stat& st, const std::string& what) {
  const uid_t me = ::geteuid();
  const bool owner_ok = st.st_uid == 0 || (me != 0 && st.st_uid == me);
  if (!owner_ok)
    return fail(Errc::permission, str(what, " is owned by uid ", st.st_uid, ", not by root", me == 0 ? std::string() : str(" or uid ", me)));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(Errc::permission, str(what, " is writable by group or others (mode ", mode_octal(st.st_mode & 07777), ")"));
  return {};
}

}  // namespace

std::uint32_t native_audit_arch() {
#if defined(__x86_64__) && !defined(__ILP32__)
  return AUDIT_ARCH_X86_64;
#else
  return 0;
#endif
}

Result<SeccompProgram> read_seccomp_program(const std::string& path, const std::string& policy, const std::string& digest) {
  auto refuse = [&](const std::string& why) {
    return fail(Errc::permission, str("system-call filter ", path, " (policy ", quote(policy), "): ", why));
  };
  const auto raw_digest = from_hex(digest);
  if (!is_sha256_hex(digest) || !raw_digest) return fail(Errc::invalid_argument, str("policy digest ", quote(digest), " is not 64 hex digits"));
  const auto slash = path.find_last_of('/');
  if (path.empty() || path[0] != '/' || slash == std::string::npos || slash + 1 == path.size())
    return fail(Errc::invalid_argument, str("system-call filter ", quote(path), ": not an absolute file path"));
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  const std::string name = path.substr(slash + 1);

  // The directory first: a file of the right owner could otherwise be renamed into it by
  // whoever else may write there (another policy's program, say).
  Fd dfd = TRY(sys::open_path(dir, O_PATH | O_DIRECTORY));
  const struct stat dst = TRY(sys::fstat(dfd.get()));
  if (auto ok = check_owner(dst, str("its directory ", dir)); !ok) return refuse(ok.error().message());

  Fd fd = TRY(sys::open_at(dfd.get(), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  const struct stat st = TRY(sys::fstat(fd.get()));
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  if (auto ok = check_owner(st, "the file"); !ok) return refuse(ok.error().message());
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < sizeof(SeccompFileHeader) + sizeof(sock_filter) || size > k_max_file || (size - sizeof(SeccompFileHeader)) % sizeof(sock_filter) != 0)
    return refuse(str("its size (", size, " bytes) is not a header and 1 to ", k_seccomp_max_instructions, " instructions"));
  const std::string bytes = TRY(sys::read_fd(fd.get(), k_max_file));
  if (bytes.size() != size) return refuse(str("read ", bytes.size(), " bytes of ", size, " (the file changed while it was read)"));

  SeccompFileHeader h{};
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, k_seccomp_magic, sizeof h.magic) != 0) return refuse("not a chrootctl system-call filter (bad magic)");
  if (h.format != k_seccomp_format) return refuse(str("format ", h.format, ", this chrootctl reads format ", k_seccomp_format));
  if (native_audit_arch() == 0) return refuse("chrootctl has no system-call filter for this architecture");
  if (h.audit_arch != native_audit_arch())
    return refuse(str("compiled for audit architecture 0x", hex_number(h.audit_arch), ", this machine is 0x", hex_number(native_audit_arch())));
  const std::uint64_t count = (size - sizeof h) / sizeof(sock_filter);
  if (h.instructions != count) return refuse(str("the header counts ", h.instructions, " instructions, the file holds ", count));
  if (h.reserved != 0) return refuse("the header's reserved field is not 0");
  if (std::memcmp(h.digest, raw_digest->data(), sizeof h.digest) != 0)
    return refuse(str("it was compiled from the policy sha256:", to_hex(h.digest, sizeof h.digest), ", not sha256:", digest));

  SeccompProgram p;
  p.policy = policy;
  p.digest = digest;
  p.instructions.resize(count);
  std::memcpy(p.instructions.data(), bytes.data() + sizeof h, count * sizeof(sock_filter));
  return p;
}

Status install_seccomp_program(const SeccompProgram& program) {
  struct sock_fprog prog {};
  prog.len = static_cast<unsigned short>(program.instructions.size());
  prog.filter = const_cast<sock_filter*>(program.instructions.data());
  if (program.instructions.empty() || program.instructions.size() > k_seccomp_max_instructions)
    return fail(Errc::invalid_argument,
                str("system-call filter of policy ", quote(program.policy), ": ", program.instructions.size(), " instructions"));
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
    return fail_errno(str("seccomp(SECCOMP_SET_MODE_FILTER, policy ", quote(program.policy), " sha256:", program.digest, ")"), errno);
  return {};
}

}  // namespace chrootctl::launcher
