// Choosing a job's system-call policy, reading its source and naming its compiled program.
// Linked into the front executable: no libseccomp, no libcrypto (sha256_builtin.hpp).
#include "chrootctl/seccomp/source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/common/sha256_builtin.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cleanup.hpp"

namespace chrootctl::seccomp {

namespace {

constexpr int k_source_format = 2;
constexpr std::size_t k_max_policy_file = 1u << 20;

// A policy file decides what jobs may call: like the configuration, it must belong to root (or
// the user running chrootctl) and be writable by no one else.
Result<std::string> read_policy_file(const std::string& path) {
  Fd fd = TRY(sys::open_path(path, O_RDONLY | O_NOCTTY | O_NONBLOCK));
  const struct stat st = TRY(sys::fstat(fd.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::permission, str("system-call policy ", path, " is not a regular file"));
  if ((st.st_uid != 0 && st.st_uid != ::geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)))
    return fail(Errc::permission, str("refusing system-call policy ", path, ": owned by uid ", st.st_uid, " with mode ",
                                      mode_octal(st.st_mode & 07777), " (it must belong to root and be writable by no one else)"));
  return with_context(sys::read_fd(fd.get(), k_max_policy_file), str("reading system-call policy ", path));
}

}  // namespace

std::string builtin_display_name(std::string_view name) { return str("built-in policy ", quote(name)); }

std::string choose_job_policy(const std::optional<std::string>& requested, const std::string& image_policy, const Settings& settings) {
  if (requested) return *requested;
  if (!image_policy.empty()) return image_policy;
  return settings.seccomp.policy.empty() ? std::string("default") : settings.seccomp.policy;
}

Result<std::optional<PolicySource>> load_source(const std::string& choice, const Settings& settings) {
  if (choice == "none") return std::optional<PolicySource>();
  PolicySource src;
  src.policy = choice;
  if (const auto text = builtin_policy_text(choice); !text.empty()) {
    src.documents.push_back({builtin_display_name(choice), std::string(text), std::string(builtin_policy_sha256(choice)), false});
  } else if (!choice.empty() && choice[0] == '/') {
    std::string file_text = TRY(read_policy_file(choice));
    src.documents.push_back({choice, std::move(file_text), {}, false});
  } else {
    return fail(Errc::invalid_argument, str("system-call policy ", quote(choice), ": expected default, none or the absolute path of a policy file"));
  }
  // The site's additions apply to every job policy, whichever was chosen; build commands run
  // the build policy as it is written.
  if (choice != "build" && choice != "build-host" && settings.seccomp.has_additions())
    src.documents.push_back({settings.config_file, settings.config_text, {}, true});
  return std::optional<PolicySource>(std::move(src));
}

std::string canonical_source(const PolicySource& source) {
  std::string out = str("chrootctl seccomp source ", k_source_format, "\n", "libseccomp ", CHROOTCTL_LIBSECCOMP_VERSION, "\n", "arch ",
                        CHROOTCTL_SECCOMP_ARCH, "\n", "policy ", source.policy.size(), "\n", source.policy, "\n");
  for (const auto& d : source.documents)
    out += str("document ", d.site ? "site" : "policy", " ", d.name.size(),
               " sha256:", d.text_sha256.empty() ? BuiltinSha256::hex(d.text) : d.text_sha256, "\n", d.name, "\n");
  return out;
}

std::string policy_digest(const PolicySource& source) { return BuiltinSha256::hex(canonical_source(source)); }

std::string cache_dir() {
  const std::string state = launcher::default_state_dir();
  return state.empty() ? std::string() : state + "/seccomp";
}

std::string program_path(const std::string& dir, const std::string& digest) { return str(dir, "/", digest, ".bpf"); }

std::optional<std::string> find_cached_program(const std::string& dir, const std::string& digest) {
  if (!dir.empty()) {
    const std::string p = program_path(dir, digest);
    if (sys::lstat_path(p)) return p;
  }
  if (::geteuid() != 0) {
    const std::string p = program_path(k_root_cache_dir, digest);
    if (sys::lstat_path(p)) return p;
  }
  return std::nullopt;
}

}  // namespace chrootctl::seccomp
