#pragma once
/// The checks of an audit over a walked tree (checks 1-11 of docs/audit.md). Pure apart from the
/// FileSource they read contents through, so unit tests run them on manifests built in memory.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/audit/audit.hpp"
#include "chrootctl/audit/policy.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::audit {

/// Where the checks read file contents from.
class FileSource {
 public:
  virtual ~FileSource() = default;
  /// Feeds the contents of the regular file `e` (an entry of the walked tree) to `sink` in
  /// chunks from the start, until the end of the file or until `sink` returns false.
  virtual Status scan(const manifest::Entry& e, const std::function<bool(std::string_view)>& sink) = 0;
  /// The first `limit` bytes of `e` (all of it if shorter).
  Result<std::string> head(const manifest::Entry& e, std::size_t limit);
  /// The whole file; a file longer than `limit` is an error naming it.
  Result<std::string> whole(const manifest::Entry& e, std::size_t limit);
};

/// Reads files of a tree on disk: each path is opened below the root with
/// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS) and O_NOFOLLOW|O_NONBLOCK, and must still be the
/// regular file the walk recorded (same device and inode), otherwise the audit fails with
/// "changed while it was being audited".
class TreeFiles final : public FileSource {
 public:
  static Result<TreeFiles> open(const std::string& root);
  Status scan(const manifest::Entry& e, const std::function<bool(std::string_view)>& sink) override;

 private:
  explicit TreeFiles(Fd root) : m_root(std::move(root)) {}
  Fd m_root;
};

/// File contents from memory (tests): path -> contents.
class MemoryFiles final : public FileSource {
 public:
  explicit MemoryFiles(std::map<std::string, std::string> files) : m_files(std::move(files)) {}
  Status scan(const manifest::Entry& e, const std::function<bool(std::string_view)>& sink) override;

 private:
  std::map<std::string, std::string> m_files;
};

struct Analysis {
  std::vector<Finding> findings;  ///< unsorted, default severities
  std::vector<std::string> notes;
};

/// Checks 1-10 over `tree` (a fresh walk: entries carry nlink, and files their sha256), reading
/// contents through `files` where a check needs them. Allow-lists of `policy` are applied here;
/// severities and ignores are not (see finish).
Result<Analysis> analyse(const manifest::Manifest& tree, FileSource& files, const Policy& policy);

/// Check 11: one finding per difference between the manifest and the walked tree.
std::vector<Finding> drift_findings(const manifest::DiffResult& d);

/// Applies the policy's severities, moves findings matched by an ignore rule to `ignored` (with
/// the reason), and sorts both (severity high first, then check, path, account).
void finish(std::vector<Finding>& findings, std::vector<Finding>& ignored, const Policy& policy);

/// Directories whose writability lets someone replace programs or libraries: PATH and library
/// directories, everything below them, and their ancestors.
bool is_exec_dir(std::string_view path);

// ---- the image's own account files ----

struct PasswdEntry {
  std::string name;
  std::string password;  ///< the second field as written ("x" when it lives in /etc/shadow)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  unsigned line = 0;
};
struct GroupEntry {
  std::string name;
  std::uint32_t gid = 0;
  unsigned line = 0;
};
struct ShadowEntry {
  std::string name;
  std::string hash;
  unsigned line = 0;
};
/// Parsed lines; lines that do not parse are skipped and named in `problems` ("FILE:LINE: ...").
/// Comment lines (#), blank lines and NIS compat lines (+ or -) are skipped silently.
std::vector<PasswdEntry> parse_passwd(std::string_view text, const std::string& label, std::vector<std::string>& problems);
std::vector<GroupEntry> parse_group(std::string_view text, const std::string& label, std::vector<std::string>& problems);
std::vector<ShadowEntry> parse_shadow(std::string_view text, const std::string& label, std::vector<std::string>& problems);

/// True when `field` (a passwd or shadow password field) is a crypt(3) hash some password could
/// match: "$id$...", 13-character DES or 20-character BSDi "_..." hashes. Locked ("!", "*"
/// prefixes) and malformed fields are not; the empty field is handled separately.
bool usable_password_hash(std::string_view field);

}  // namespace chrootctl::audit
