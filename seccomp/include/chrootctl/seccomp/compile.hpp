#pragma once
/// Compiling a policy to a seccomp BPF program with libseccomp, and the cache of compiled
/// programs that launches load (launcher/seccomp_program.hpp reads them).
///
/// The program filters the native x86-64 ABI and the i386 ABI, each in its own numbering, with
/// the same policy; any other architecture value, and x32 system-call numbers (bit 30 set),
/// get EPERM. Calls the policy does not name get its unknown_errno (ENOSYS).

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/seccomp/policy.hpp"
#include "chrootctl/seccomp/source.hpp"

namespace chrootctl::seccomp {

/// Compiles `policy` (libseccomp, binary-tree dispatch). Fails if libseccomp refuses a rule or
/// the program exceeds the kernel's 4096 instructions.
Result<std::vector<sock_filter>> compile_policy(const Policy& policy);

/// Runs a classic BPF program on `data` as the kernel's seccomp would, and returns what it
/// returns (SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | errno, ...). For tests and `seccomp check`;
/// an invalid program (a jump out of range, no return) yields SECCOMP_RET_KILL_PROCESS.
std::uint32_t run_program(const std::vector<sock_filter>& program, const struct seccomp_data& data);

/// The bytes of a program file (header, then instructions) for `digest`.
std::string encode_program(const std::string& digest, const std::vector<sock_filter>& program);

struct Cached {
  std::string path;  ///< DIR/DIGEST.bpf
  std::string digest;
  std::size_t instructions = 0;
  bool compiled = false;  ///< false: it was in the cache already
};

/// The program for `source` in the cache directory `dir` (created 0755 if missing; when run as
/// root it must be owned by root and writable by no one else): if DIR/DIGEST.bpf is there it is
/// used as it is, else the policy is parsed, compiled and written there atomically (a temporary
/// file, fsync, rename, fsync of the directory), mode 0644, and read back as the launcher
/// reads it.
Result<Cached> compile_to_cache(const PolicySource& source, const std::string& dir);

}  // namespace chrootctl::seccomp
