#pragma once
/// Command lines for the host tools that make base trees (mmdebstrap, debootstrap, dnf) and the
/// host apt sources a Debian recipe uses when it names no mirror. Pure functions, unit-tested.

#include <string>
#include <utility>
#include <vector>

#include "chrootctl/builder/recipe.hpp"

namespace chrootctl::builder {

/// Wraps a host tool so that every mount it makes lives in a private mount namespace and every
/// process it starts dies with it (its own PID namespace, killed when the builder dies):
/// `unshare --mount --propagation private --pid --fork --kill-child -- ARGV...`.
std::vector<std::string> contained(std::vector<std::string> argv);

/// `mmdebstrap --variant=V --mode=root --format=directory [--include=a,b] [--components=...]
/// SUITE TARGET MIRROR-OR-SOURCES-FILE`.
std::vector<std::string> mmdebstrap_argv(const DebootstrapBase& b, const std::string& target, const std::string& mirror_or_sources);
/// `debootstrap --variant=V [--include=a,b] [--components=...] SUITE TARGET MIRROR`. debootstrap
/// knows only minbase and buildd among the variants (others map to its default).
std::vector<std::string> debootstrap_argv(const DebootstrapBase& b, const std::string& target, const std::string& mirror);

/// The dnf command line for installing (verb "install") or removing ("remove") `packages` in
/// `root`. `config` is the dnf.conf the builder writes (see dnf_config); repos come from
/// `b.repos` (--repofrompath) or `b.reposdir`. dnf keeps its cache in the tree's
/// /var/cache/dnf, which the builder empties afterwards.
std::vector<std::string> dnf_argv(const DnfBase& b, const std::string& root, const std::string& config, const std::string& verb,
                                  const std::vector<std::string>& packages);
/// The rpm macros file the builder gives dnf (as ~/.rpmmacros): the rpmdb lives in the tree's
/// /var/lib/rpm, whatever the host's rpm defaults to (Debian's rpm uses ~/.rpmdb).
std::string rpm_macros();
/// The dnf.conf used for a build: host settings are never read.
std::string dnf_config(const DnfBase& b, const std::string& reposdir);

/// Entries of the host's apt sources (one-line or deb822 files, as text) for `suite` and its
/// -updates, -security and -backports companions, as one deb822 document. Empty if none match.
std::string apt_sources_for_suite(const std::vector<std::pair<std::string, std::string>>& files, const std::string& suite);
/// The first mirror URI among those entries for `suite` itself (for debootstrap), or "".
std::string first_mirror_for_suite(const std::string& deb822, const std::string& suite);

}  // namespace chrootctl::builder
