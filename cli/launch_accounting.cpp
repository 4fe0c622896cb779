#include "launch_accounting.hpp"

#include <unistd.h>

#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {

namespace ln = chrootctl::launcher;

ln::AccountingRecord begin_record(const std::string& via) {
  ln::AccountingRecord r;
  r.via = via;
  r.start_ns = ln::wall_clock_ns();
  r.invoking_uid = ::getuid();
  return r;
}

void add_image(ln::AccountingRecord& record, const catalogue::ResolvedRoot& resolved) {
  record.image = resolved.requested;
  record.entry = resolved.name;
  record.build_id = resolved.version.build_id;
  record.tree_digest = resolved.version.digest;
  record.signer = resolved.version.signer;
  record.root = resolved.root;
}

void record_launch(const Settings& settings, ln::AccountingRecord& record, const ln::Outcome& outcome) {
  if (!settings.accounting.enabled) return;
  record.end_ns = ln::wall_clock_ns();
  record.outcome = outcome;
  if (outcome.job_uid) record.job_uid = outcome.job_uid;
  if (!outcome.job_user.empty()) record.job_user = outcome.job_user;
  const ln::AccountingLog log{settings.accounting.path, settings.accounting.max_bytes, settings.accounting.keep};
  if (auto r = ln::append_accounting_line(log, ln::accounting_line(record)); !r)
    err(str("chrootctl ", record.via, ": warning: accounting: ", r.error().what(), "\n"));
}

void record_refusal(const Settings& settings, ln::AccountingRecord& record, const std::string& error) {
  ln::Outcome refused;
  refused.kind = ln::Outcome::Kind::setup_failed;
  refused.error = error;
  refused.cgroup = "none";
  record_launch(settings, record, refused);
}

}  // namespace chrootctl::cli
