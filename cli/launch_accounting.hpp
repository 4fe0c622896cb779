#pragma once
// The accounting line of a launch by `run` or `condor-wrapper` (launcher/accounting.hpp): the
// record filled from what the verb knows, written once the outcome is known.

#include <string>

#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/launcher/accounting.hpp"

namespace chrootctl::cli {

/// A record begun now (start time, the caller's uid) for a launch by `via`.
launcher::AccountingRecord begin_record(const std::string& via);

/// Copies what the catalogue resolved (name asked for, entry, build id, tree digest, signer,
/// root) into the record.
void add_image(launcher::AccountingRecord& record, const catalogue::ResolvedRoot& resolved);

/// Sets the end time and the outcome, and appends the line to the site's accounting log unless
/// `[accounting] enabled = false`. A failure is printed on stderr as
/// "chrootctl VERB: warning: accounting: ..." and changes nothing else.
void record_launch(const Settings& settings, launcher::AccountingRecord& record, const launcher::Outcome& outcome);

/// The same for a launch refused before the launcher ran: outcome setup_failed with `error`.
void record_refusal(const Settings& settings, launcher::AccountingRecord& record, const std::string& error);

}  // namespace chrootctl::cli
