// Compiling a policy with libseccomp, and the cache of compiled programs.
//
// Each ABI gets its own libseccomp context, merged into one program at the end: the native
// x86-64 one and the i386 one, with the same dispositions in their own numbering (libseccomp
// translates the names, and turns i386's socket and ipc calls into rules on the socketcall
// and ipc multiplexers as well as the direct calls).
//
// libseccomp gives no defined result when two rules of one system call with different actions
// overlap (an unconditional allow and a conditional deny, say: the conditional one is silently
// dropped). So an argument rule is written as two sets of disjoint conditions: the values that
// are allowed and the values that are refused, each as masked comparisons that together cover
// every value (see refused_patterns and allowed_patterns). Only one comparison per argument is
// allowed in a libseccomp rule, so every pattern is one rule.
#include "chrootctl/seccomp/compile.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"

namespace chrootctl::seccomp {

namespace {

using Context = std::unique_ptr<void, decltype(&seccomp_release)>;

struct Abi {
  std::uint32_t token;  // SCMP_ARCH_*
  const char* name;
  unsigned register_bits;
};
constexpr Abi k_x86_64{SCMP_ARCH_X86_64, "x86-64", 64};
constexpr Abi k_i386{SCMP_ARCH_X86, "i386", 32};

// (argument & mask) == value.
struct Pattern {
  std::uint64_t mask;
  std::uint64_t value;
};

std::uint64_t width_mask(unsigned bits) { return bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1; }

// The values of `bits` bits that are not in `values` (all of which share `prefix` above bit
// `bits - depth`), as patterns: walking the bits from the top, each branch that no value takes
// is one pattern covering all its values. At most bits * values.size() patterns.
void complement(const std::vector<std::uint64_t>& values, unsigned bits, unsigned depth, std::uint64_t prefix, std::vector<Pattern>& out) {
  if (depth == bits) return;  // exactly one of the values
  const unsigned bit = bits - 1 - depth;
  const std::uint64_t mask = width_mask(bits) & ~((std::uint64_t{1} << bit) - 1);  // bits `bit` and above
  for (std::uint64_t b : {std::uint64_t{0}, std::uint64_t{1}}) {
    std::vector<std::uint64_t> taking;
    for (auto v : values)
      if (((v >> bit) & 1) == b) taking.push_back(v);
    const std::uint64_t branch = prefix | (b << bit);
    if (taking.empty()) out.push_back({mask, branch});
    else complement(taking, bits, depth + 1, branch, out);
  }
}

// The values `rule` allows and refuses, for an ABI whose registers have `register_bits` bits.
struct Split {
  std::vector<Pattern> allowed, refused;
  bool all_allowed = false;  // the rule allows every value this ABI can pass
};
Split split_rule(const ArgRule& rule, unsigned register_bits) {
  const unsigned bits = std::min(rule.width, register_bits);
  const std::uint64_t wm = width_mask(bits);
  Split s;
  switch (rule.kind) {
    case ArgRule::Kind::allow_if_clear: {
      const std::uint64_t m = rule.mask & wm;
      if (m == 0) {
        s.all_allowed = true;
        break;
      }
      s.allowed.push_back({m, 0});
      for (unsigned b = 0; b < 64; ++b)
        if ((m >> b) & 1) s.refused.push_back({std::uint64_t{1} << b, std::uint64_t{1} << b});
      break;
    }
    case ArgRule::Kind::allow_values:
    case ArgRule::Kind::deny_values: {
      std::vector<std::uint64_t> values;
      for (auto v : rule.values)
        if ((v & wm) == v) values.push_back(v);  // a value wider than the register cannot be passed
      std::vector<Pattern> exact, others;
      for (auto v : values) exact.push_back({wm, v});
      complement(values, bits, 0, 0, others);
      if (rule.kind == ArgRule::Kind::allow_values) {
        s.allowed = std::move(exact);
        s.refused = std::move(others);
      } else {
        s.refused = std::move(exact);
        s.allowed = std::move(others);
        s.all_allowed = values.empty();
      }
      break;
    }
  }
  return s;
}

Status add_rule(void* ctx, const Abi& abi, const std::string& name, int nr, std::uint32_t action, const Pattern* p, unsigned arg) {
  int rc;
  if (p) {
    const scmp_arg_cmp cmp{arg, SCMP_CMP_MASKED_EQ, p->mask, p->value};
    rc = seccomp_rule_add_array(ctx, action, nr, 1, &cmp);
  } else {
    rc = seccomp_rule_add_array(ctx, action, nr, 0, nullptr);
  }
  if (rc != 0)
    return fail(Errc::internal, str("libseccomp refused the ", abi.name, " rule for ", quote(name),
                                    p ? str(" (argument ", arg, " & 0x", hex_number(p->mask), " == 0x", hex_number(p->value), ")") : std::string(),
                                    ": ", std::strerror(-rc)));
  return {};
}

// The policy's dispositions in one ABI's context.
Status add_abi_rules(void* ctx, const Abi& abi, const Policy& policy) {
  for (const auto& [name, d] : policy.calls) {
    const int in_abi = seccomp_syscall_resolve_name_arch(abi.token, name.c_str());
    // Not a call of this ABI: unknown, or one of libseccomp's placeholders for calls another
    // ABI has (-10000 and below); x86-64 has no multiplexed calls either.
    if (in_abi == __NR_SCMP_ERROR || in_abi <= -10000 || (abi.register_bits == 64 && in_abi < 0)) continue;
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;
    switch (d.kind) {
      case Disposition::Kind::allow:
        TRY(add_rule(ctx, abi, name, nr, SCMP_ACT_ALLOW, nullptr, 0));
        break;
      case Disposition::Kind::deny: {
        const int e = d.errno_value.value_or(policy.errno_value);
        // The filter's default action already answers this errno (libseccomp refuses a rule
        // that repeats it).
        if (e != policy.unknown_errno) TRY(add_rule(ctx, abi, name, nr, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(e)), nullptr, 0));
        break;
      }
      case Disposition::Kind::rule: {
        const Split s = split_rule(d.rule, abi.register_bits);
        if (s.all_allowed && s.refused.empty()) {
          TRY(add_rule(ctx, abi, name, nr, SCMP_ACT_ALLOW, nullptr, 0));
          break;
        }
        for (const auto& p : s.allowed) TRY(add_rule(ctx, abi, name, nr, SCMP_ACT_ALLOW, &p, d.rule.arg));
        const int e = d.rule.errno_value.value_or(policy.errno_value);
        // On i386, a call made through socketcall or ipc has its arguments in memory: libseccomp
        // can only allow or refuse the operation as a whole, and it is allowed (by the rules
        // above); the refused values are refused on the direct call by the default action.
        const bool multiplexed = abi.register_bits == 32 && in_abi < 0 && is_i386_multiplexed(name);
        if (e == policy.unknown_errno || multiplexed) break;
        for (const auto& p : s.refused) TRY(add_rule(ctx, abi, name, nr, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(e)), &p, d.rule.arg));
        break;
      }
    }
  }
  return {};
}

Result<Context> new_context(const Abi& abi, const Policy& policy) {
  Context ctx(seccomp_init(SCMP_ACT_ERRNO(static_cast<std::uint32_t>(policy.unknown_errno))), &seccomp_release);
  if (!ctx) return fail(Errc::internal, "seccomp_init failed (out of memory?)");
  auto check = [&](int rc, const char* what) -> Status {
    if (rc != 0) return fail(Errc::internal, str("libseccomp: ", what, " for ", abi.name, ": ", std::strerror(-rc)));
    return {};
  };
  if (abi.token != SCMP_ARCH_NATIVE && abi.token != seccomp_arch_native()) {
    TRY(check(seccomp_arch_add(ctx.get(), abi.token), "seccomp_arch_add"));
    TRY(check(seccomp_arch_remove(ctx.get(), SCMP_ARCH_NATIVE), "seccomp_arch_remove(native)"));
  }
  // An architecture the program does not know, and x32 numbers on x86-64, are denied.
  TRY(check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(policy.errno_value))),
            "SCMP_FLTATR_ACT_BADARCH"));
  // Dispatch on the call number through a binary tree rather than one comparison per rule.
  TRY(check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "SCMP_FLTATR_CTL_OPTIMIZE"));
  return ctx;
}

}  // namespace

Result<std::vector<sock_filter>> compile_policy(const Policy& policy) {
  if (seccomp_arch_native() != SCMP_ARCH_X86_64 || launcher::native_audit_arch() != AUDIT_ARCH_X86_64)
    return fail(Errc::unsupported, "system-call policies are compiled for x86-64 only");
  Context native = TRY(new_context(k_x86_64, policy));
  TRY(add_abi_rules(native.get(), k_x86_64, policy));
  Context i386 = TRY(new_context(k_i386, policy));
  TRY(add_abi_rules(i386.get(), k_i386, policy));
  if (int rc = seccomp_merge(native.get(), i386.get()); rc != 0)
    return fail(Errc::internal, str("libseccomp: seccomp_merge(x86-64, i386): ", std::strerror(-rc)));
  (void)i386.release();  // seccomp_merge freed it

  Fd mem(::memfd_create("chrootctl-seccomp", MFD_CLOEXEC));
  if (!mem) return fail_errno("memfd_create(\"chrootctl-seccomp\")", errno);
  if (int rc = seccomp_export_bpf(native.get(), mem.get()); rc != 0)
    return fail(Errc::internal, str("libseccomp: seccomp_export_bpf: ", std::strerror(-rc)));
  if (::lseek(mem.get(), 0, SEEK_SET) != 0) return fail_errno("lseek(memfd, 0)", errno);
  const std::string bytes = TRY(sys::read_fd(mem.get(), (launcher::k_seccomp_max_instructions + 1) * sizeof(sock_filter)));
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0)
    return fail(Errc::internal, str("libseccomp exported ", bytes.size(), " bytes, not a whole program"));
  const std::size_t count = bytes.size() / sizeof(sock_filter);
  if (count > launcher::k_seccomp_max_instructions)
    return fail(Errc::invalid_argument,
                str("policy ", quote(policy.name), " compiles to more than the kernel's ", launcher::k_seccomp_max_instructions, " instructions"));
  std::vector<sock_filter> program(count);
  std::memcpy(program.data(), bytes.data(), bytes.size());
  return program;
}

std::uint32_t run_program(const std::vector<sock_filter>& program, const struct seccomp_data& data) {
  std::uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  unsigned char raw[sizeof data];
  std::memcpy(raw, &data, sizeof data);
  for (std::size_t pc = 0; pc < program.size(); ++pc) {
    const sock_filter& f = program[pc];
    const std::uint32_t src = BPF_SRC(f.code) == BPF_X ? x : f.k;
    auto jump = [&](bool taken) { pc += taken ? f.jt : f.jf; };
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (f.code == (BPF_LD | BPF_W | BPF_ABS) && f.k % 4 == 0 && f.k + 4 <= sizeof data) std::memcpy(&a, raw + f.k, 4);
        else if (f.code == (BPF_LD | BPF_IMM)) a = f.k;
        else if (f.code == (BPF_LD | BPF_MEM) && f.k < BPF_MEMWORDS) a = mem[f.k];
        else if (f.code == (BPF_LD | BPF_W | BPF_LEN)) a = sizeof data;
        else return SECCOMP_RET_KILL_PROCESS;
        break;
      case BPF_LDX:
        if (f.code == (BPF_LDX | BPF_IMM)) x = f.k;
        else if (f.code == (BPF_LDX | BPF_MEM) && f.k < BPF_MEMWORDS) x = mem[f.k];
        else if (f.code == (BPF_LDX | BPF_W | BPF_LEN)) x = sizeof data;
        else return SECCOMP_RET_KILL_PROCESS;
        break;
      case BPF_ST:
        if (f.k >= BPF_MEMWORDS) return SECCOMP_RET_KILL_PROCESS;
        mem[f.k] = a;
        break;
      case BPF_STX:
        if (f.k >= BPF_MEMWORDS) return SECCOMP_RET_KILL_PROCESS;
        mem[f.k] = x;
        break;
      case BPF_ALU:
        switch (BPF_OP(f.code)) {
          case BPF_ADD:
            a += src;
            break;
          case BPF_SUB:
            a -= src;
            break;
          case BPF_MUL:
            a *= src;
            break;
          case BPF_DIV:
            if (src == 0) return SECCOMP_RET_KILL_PROCESS;
            a /= src;
            break;
          case BPF_MOD:
            if (src == 0) return SECCOMP_RET_KILL_PROCESS;
            a %= src;
            break;
          case BPF_AND:
            a &= src;
            break;
          case BPF_OR:
            a |= src;
            break;
          case BPF_XOR:
            a ^= src;
            break;
          case BPF_LSH:
            a = src < 32 ? a << src : 0;
            break;
          case BPF_RSH:
            a = src < 32 ? a >> src : 0;
            break;
          case BPF_NEG:
            a = 0 - a;
            break;
          default:
            return SECCOMP_RET_KILL_PROCESS;
        }
        break;
      case BPF_JMP:
        switch (BPF_OP(f.code)) {
          case BPF_JA:
            pc += f.k;
            break;
          case BPF_JEQ:
            jump(a == src);
            break;
          case BPF_JGT:
            jump(a > src);
            break;
          case BPF_JGE:
            jump(a >= src);
            break;
          case BPF_JSET:
            jump((a & src) != 0);
            break;
          default:
            return SECCOMP_RET_KILL_PROCESS;
        }
        break;
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? a : f.k;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX) x = a;
        else a = x;
        break;
      default:
        return SECCOMP_RET_KILL_PROCESS;
    }
  }
  return SECCOMP_RET_KILL_PROCESS;  // fell off the end
}

std::string encode_program(const std::string& digest, const std::vector<sock_filter>& program) {
  launcher::SeccompFileHeader h{};
  std::memcpy(h.magic, launcher::k_seccomp_magic, sizeof h.magic);
  h.format = launcher::k_seccomp_format;
  h.audit_arch = launcher::native_audit_arch();
  h.instructions = static_cast<std::uint32_t>(program.size());
  h.reserved = 0;
  const auto raw = from_hex(digest);
  if (raw && raw->size() == sizeof h.digest) std::memcpy(h.digest, raw->data(), sizeof h.digest);
  std::string out(reinterpret_cast<const char*>(&h), sizeof h);
  out.append(reinterpret_cast<const char*>(program.data()), program.size() * sizeof(sock_filter));
  return out;
}

namespace {

// The cache directory: made if missing; a directory others may write to is refused, since its
// programs decide what jobs may call.
Result<Fd> open_cache_dir(const std::string& dir) {
  TRY(with_context(sys::mkdir_p(dir, 0755), str("creating the system-call filter cache ", dir)));
  Fd d = TRY(sys::open_path(dir, O_RDONLY | O_DIRECTORY));
  const struct stat st = TRY(sys::fstat(d.get()));
  const uid_t me = ::geteuid();
  if (st.st_uid != me && st.st_uid != 0)
    return fail(Errc::permission, str("the system-call filter cache ", dir, " is owned by uid ", st.st_uid, ", not by uid ", me));
  if (me == 0 && st.st_uid != 0) return fail(Errc::permission, str("the system-call filter cache ", dir, " is not owned by root"));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(Errc::permission,
                str("the system-call filter cache ", dir, " is writable by group or others (mode ", mode_octal(st.st_mode & 07777), ")"));
  return d;
}

Status write_atomically(int dirfd, const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string tmp = str(".", name, ".", TRY(sys::random_hex(8)), ".tmp");
  Fd f = TRY(sys::open_at(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
  Status written = {};
  if (::fchmod(f.get(), 0644) != 0) written = fail_errno(str("fchmod(", dir, "/", tmp, ", 0644)"), errno);
  if (written) written = sys::write_all(f.get(), bytes);
  if (written) written = sys::fsync(f.get());
  f.reset();
  if (written) written = sys::rename_at(dirfd, tmp, dirfd, name);
  if (!written) {
    (void)sys::unlink_at(dirfd, tmp);  // the failure being returned is the one that matters
    return written;
  }
  return sys::fsync(dirfd);
}

}  // namespace

Result<Cached> compile_to_cache(const PolicySource& source, const std::string& dir) {
  if (dir.empty() || dir[0] != '/') return fail(Errc::invalid_argument, str("system-call filter cache ", quote(dir), " is not an absolute path"));
  Cached c;
  c.digest = policy_digest(source);
  c.path = program_path(dir, c.digest);
  Fd d = TRY(open_cache_dir(dir));
  if (sys::lstat_at(d.get(), c.digest + ".bpf")) {
    // Already compiled: used as it is if the launcher would accept it, replaced otherwise.
    if (auto p = launcher::read_seccomp_program(c.path, source.policy, c.digest)) {
      c.instructions = p->instructions.size();
      return c;
    }
  }
  const Policy policy = TRY(parse_policy(source));
  const auto program = TRY(compile_policy(policy));
  TRY(with_context(write_atomically(d.get(), dir, c.digest + ".bpf", encode_program(c.digest, program)), str("writing ", c.path)));
  const auto back = TRY(with_context(launcher::read_seccomp_program(c.path, source.policy, c.digest), "reading back the program just written"));
  c.instructions = back.instructions.size();
  c.compiled = true;
  return c;
}

}  // namespace chrootctl::seccomp
