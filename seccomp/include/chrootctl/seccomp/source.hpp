#pragma once
/// Which system-call policy a launch uses, and the digest that names its compiled program.
///
/// This part links no libseccomp, so the front executable (`chrootctl run`) can use it at every
/// launch: it chooses the policy, reads its source, hashes it and looks for the program
/// compiled from it in the cache; only on a miss does it run `chrootctl-full seccomp compile`,
/// which parses and compiles the same source (policy.hpp, compile.hpp). docs/seccomp.md
/// describes the policies, their format and the cache.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::seccomp {

/// The built-in policies: "default" (jobs), "build" (build commands in the tree) and
/// "build-host" (the host tools a build runs: mmdebstrap, debootstrap, dnf).
inline constexpr std::string_view k_builtin_policies[] = {"default", "build", "build-host"};
/// The TOML text of a built-in policy (compiled into the binary), or empty for another name.
std::string_view builtin_policy_text(std::string_view name);
/// Its SHA-256 (64 hex digits), computed when chrootctl was built, or empty.
std::string_view builtin_policy_sha256(std::string_view name);
/// How messages name a built-in policy's text: "built-in policy 'default'".
std::string builtin_display_name(std::string_view name);

/// One text of a policy source.
struct PolicyDocument {
  std::string name;  ///< for messages: a file's path, or builtin_display_name()
  std::string text;
  std::string text_sha256;  ///< SHA-256 of `text`; computed by canonical_source when empty
  /// The site configuration: only its [seccomp] table is read, and only what adds to a policy
  /// (allow, deny, errno, allow_user_namespaces).
  bool site = false;
};

/// Everything a policy is compiled from: its own text (a built-in policy or a policy file),
/// then, for job policies, the site configuration when its [seccomp] table adds to it.
struct PolicySource {
  std::string policy;  ///< what messages and the status record name: "default", "build" or a file's path
  std::vector<PolicyDocument> documents;
};

/// The policy a job runs with: `requested` (run --seccomp) if given, else the image's own
/// (`add --seccomp`, empty for none), else the site's ([seccomp] policy, "default" unless set).
/// Each is "default", "none" or a policy file's absolute path.
std::string choose_job_policy(const std::optional<std::string>& requested, const std::string& image_policy, const Settings& settings);

/// The source of `choice` (a built-in policy's name or a policy file's absolute path); nullopt
/// for "none". A policy file must be a regular file owned by root (or the caller) and writable by
/// no one else, like the configuration: whoever can write it decides what jobs may call.
/// Job policies ("default" and files) get the site's additions from `settings`; the build
/// policies are used as they are written.
Result<std::optional<PolicySource>> load_source(const std::string& choice, const Settings& settings);

/// The bytes a digest covers: a salt (this format's version, the libseccomp version chrootctl
/// was built with, the architecture), the policy's name, then each document's role, name and
/// the SHA-256 of its text, length-prefixed. (A built-in policy's text is hashed when chrootctl
/// is built, so that a launch with it hashes a few hundred bytes, not its text.)
std::string canonical_source(const PolicySource& source);
/// SHA-256 of canonical_source, 64 lowercase hex digits: the name of the compiled program.
std::string policy_digest(const PolicySource& source);

/// Where compiled programs are cached: STATE_DIR/seccomp (STATE_DIR as for launch records:
/// $CHROOTCTL_STATE_DIR, /run/chrootctl for root, $XDG_RUNTIME_DIR/chrootctl otherwise), or
/// empty when there is no state directory.
std::string cache_dir();
/// Root's cache, which other users may read too: /run/chrootctl/seccomp.
inline constexpr const char* k_root_cache_dir = "/run/chrootctl/seccomp";
/// DIR/DIGEST.bpf
std::string program_path(const std::string& dir, const std::string& digest);
/// The cached program for `digest`: in `dir` if it is there, else (for a caller other than
/// root) in root's cache; nullopt if neither has it. Only looks (lstat); the launcher checks
/// the file when it reads it.
std::optional<std::string> find_cached_program(const std::string& dir, const std::string& digest);

}  // namespace chrootctl::seccomp
