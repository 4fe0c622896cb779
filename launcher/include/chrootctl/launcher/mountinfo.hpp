#pragma once
/// /proc/self/mountinfo, parsed (proc(5)). Used to find cgroup hierarchies and, on kernels
/// without mount_setattr, the submounts of a tree to remount read-only.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace chrootctl::launcher {

struct MountInfo {
  int id = 0;
  int parent = 0;
  std::string root;         ///< the root of the mount within its filesystem
  std::string mount_point;  ///< unescaped (\040 -> ' ')
  std::string options;      ///< per-mount options ("rw,nosuid")
  std::string fstype;
  std::string source;
  std::string super_options;
};

/// One line of a mountinfo file as views into its text, still escaped (\040 for ' ').
struct MountInfoFields {
  std::string_view id, parent, root, mount_point, options, fstype, source, super_options;
};

/// Calls `fn` for each well-formed line of a mountinfo file, without allocating; malformed
/// lines are skipped.
void for_each_mount(std::string_view text, const std::function<void(const MountInfoFields&)>& fn);

/// Undoes mountinfo's octal escapes (\040 -> ' ').
std::string unescape_mountinfo(std::string_view s);

/// Parses the text of a mountinfo file; malformed lines are skipped.
std::vector<MountInfo> parse_mountinfo(std::string_view text);

/// True if `path` is `prefix` or below it ("/a/b" is under "/a", "/ab" is not).
bool path_is_under(std::string_view path, std::string_view prefix);

}  // namespace chrootctl::launcher
