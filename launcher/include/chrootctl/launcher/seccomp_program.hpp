#pragma once
/// A job's system-call filter on the launch path: a BPF program compiled beforehand (by
/// `chrootctl-full seccomp compile`, with libseccomp) and cached as a file, which the launcher
/// reads, checks and installs. The launcher itself never compiles a policy and links no
/// libseccomp (checked in CMakeLists.txt).
///
/// The file, `STATE_DIR/seccomp/DIGEST.bpf` (docs/seccomp.md), is a 56-byte header followed by
/// the program, all in the machine's byte order:
///
///   offset  size  field
///        0     8  magic "CHRTSCMP"
///        8     4  format version (1)
///       12     4  audit architecture the program was compiled for (AUDIT_ARCH_X86_64)
///       16     4  number of instructions (1 to 4096)
///       20     4  reserved, 0
///       24    32  the policy digest (SHA-256 of the policy source), as raw bytes
///       56   8*n  the instructions: struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl::launcher {

/// The header of a cached program file.
struct SeccompFileHeader {
  char magic[8];
  std::uint32_t format;
  std::uint32_t audit_arch;
  std::uint32_t instructions;
  std::uint32_t reserved;
  unsigned char digest[32];
};
static_assert(sizeof(SeccompFileHeader) == 56);

inline constexpr char k_seccomp_magic[8] = {'C', 'H', 'R', 'T', 'S', 'C', 'M', 'P'};
inline constexpr std::uint32_t k_seccomp_format = 1;
/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
inline constexpr std::uint32_t k_seccomp_max_instructions = 4096;

/// The audit architecture of the system calls this build makes (what the kernel puts in
/// seccomp_data.arch for them), e.g. AUDIT_ARCH_X86_64; 0 on an architecture chrootctl has no
/// filter for.
std::uint32_t native_audit_arch();

/// What a launch installs: the policy's name and digest (for messages and the status record)
/// and its instructions.
struct SeccompProgram {
  std::string policy;
  std::string digest;  ///< 64 lowercase hex digits
  std::vector<sock_filter> instructions;
};

/// Reads and checks the program file `path`, which must hold the program compiled from the
/// policy whose digest is `digest`: a regular file (not a symlink) at most the size of a
/// 4096-instruction program, with a valid header for this machine's architecture naming
/// `digest`, and exactly the instructions the header counts. When the caller is root, the file
/// and the directory holding it must be owned by root and writable by no one else; otherwise
/// they must be owned by root or the caller and writable by no one else.
Result<SeccompProgram> read_seccomp_program(const std::string& path, const std::string& policy, const std::string& digest);

/// Installs `program` on the calling thread with seccomp(SECCOMP_SET_MODE_FILTER). The caller
/// must have set no_new_privs or hold CAP_SYS_ADMIN. Allocates nothing unless it fails.
Status install_seccomp_program(const SeccompProgram& program);

}  // namespace chrootctl::launcher
