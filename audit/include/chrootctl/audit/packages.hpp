#pragma once
/// Installed packages of an image (check 12): from dpkg's status file, parsed here, or from the
/// rpm database, read by the host's `rpm` on a private copy of the database.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl::audit {

struct Package {
  std::string name;
  std::string version;  ///< dpkg: as in the status file ("1:2.36-9+deb12u4"); rpm: [EPOCH:]VERSION-RELEASE
  std::string arch;     ///< "amd64", "all", "x86_64", "noarch"; empty if the database has none
  friend bool operator==(const Package&, const Package&) = default;
};

struct PackageList {
  enum class Source {
    none,     ///< the image has no package database
    dpkg,     ///< /var/lib/dpkg/status
    rpm,      ///< an rpm database, read with the host's rpm
    unknown,  ///< a database exists but could not be read here (`note` says why)
  };
  Source source = Source::none;
  std::string database;           ///< path inside the image of what was read (empty for none)
  std::string note;               ///< for unknown: why
  std::vector<Package> packages;  ///< sorted by name, then arch
};
std::string_view source_name(PackageList::Source s);

/// Parses a dpkg status file: every stanza whose Status says the package's files are on disk
/// (installed, unpacked, half-installed, half-configured, triggers-awaited, triggers-pending).
/// Errors (Errc::parse) name `label:LINE`.
Result<std::vector<Package>> parse_dpkg_status(std::string_view text, const std::string& label);

/// Parses `rpm -qa` output in the format this module asks for (NAME TAB EVR TAB ARCH per line).
Result<std::vector<Package>> parse_rpm_query(std::string_view text);

/// Where rpm databases live inside an image, in the order they are looked for.
inline constexpr std::string_view k_rpm_db_dirs[] = {"/usr/lib/sysimage/rpm", "/var/lib/rpm"};

/// Reads the packages of the image rooted at `root`. Paths inside the image are resolved with
/// openat2(RESOLVE_IN_ROOT), so no symlink in the image leads outside it. dpkg is preferred
/// when /var/lib/dpkg/status exists. An rpm database is copied to a private directory and read
/// there by the host's rpm (sqlite, or read-only Berkeley DB); when we are root, rpm runs under
/// a transient uid and gid that no other process has, with no supplementary groups, no new
/// privileges, a clean environment and a time limit. Nothing in the image is written. No rpm on
/// the host, or a database it cannot read, gives Source::unknown with the reason; it is not an
/// error. $CHROOTCTL_RPM names another rpm binary (it must be executable).
Result<PackageList> read_packages(const std::string& root);

}  // namespace chrootctl::audit
