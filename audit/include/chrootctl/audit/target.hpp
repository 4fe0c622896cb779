#pragma once
/// What `chrootctl audit` and `chrootctl diff` are pointed at: a catalogue name (entry or alias),
/// a build directory, or (diff only) a bare manifest.
///
/// An argument containing '/' is always a path. Any other argument is looked up in the
/// catalogue first, and taken as a path only when the catalogue has no such name.

#include <optional>
#include <string>
#include <vector>

#include "chrootctl/audit/audit.hpp"
#include "chrootctl/audit/diff.hpp"
#include "chrootctl/common/error.hpp"

namespace chrootctl::audit {

/// The image `arg` names. `store` overrides the configured store (--store).
Result<Target> resolve_target(const std::string& arg, const std::optional<std::string>& store);
/// The current version of every catalogue entry (aliases are not repeated), by name.
Result<std::vector<Target>> catalogue_targets(const std::optional<std::string>& store);
/// One side of a diff: a catalogue name, a build directory or a manifest file.
Result<DiffSide> resolve_side(const std::string& arg, const std::optional<std::string>& store);

}  // namespace chrootctl::audit
