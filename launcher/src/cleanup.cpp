// `chrootctl cleanup`, and every `chrootctl run` before it starts: removes the records, cgroups
// and id block claims of launches whose launcher is gone (state.cpp writes them).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "state.hpp"

namespace chrootctl::launcher {

namespace {
// Frees the id block claim of base `base` if it is held by the launch `name`.
void free_claim(CleanupReport& rep, const std::string& claims_dir, std::uint32_t base, const std::string& name) {
  auto c = detail::lock_claims(claims_dir);
  if (c && detail::remove_claim_of(*c, std::to_string(base), name)) rep.freed_id_blocks.push_back(str(claims_dir, "/", base));
}

// Records decide what gets removed, so they are read only from a directory nobody else can
// write to; each names only cgroups below a `chrootctl` base that carry the record's own name.
template <class Remove>
void remove_dead_records(CleanupReport& rep, const std::string& claims_dir, const std::string& dir, bool (*is_live)(const LaunchOwner&),
                         Remove&& remove_cgroup) {
  auto fd = sys::open_path(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd) {
    if (fd.error().sys_errno() != ENOENT) rep.errors.push_back(fd.error().what());
    return;
  }
  auto st = sys::fstat(fd->get());
  if (!st || st->st_uid != ::geteuid() || (st->st_mode & 022)) {
    rep.errors.push_back(str(dir, " is not a private directory of uid ", ::geteuid(), "; its records are ignored"));
    return;
  }
  auto entries = sys::read_dir(fd->get(), false);
  if (!entries) {
    rep.errors.push_back(entries.error().what());
    return;
  }
  for (const auto& e : *entries) {
    auto owner = parse_launch_name(e.name);
    if (!owner) continue;  // not a record (an editor's temporary file, ...)
    if (is_live(*owner)) {
      rep.live.push_back(e.name);
      continue;
    }
    std::optional<RecordContents> record;
    if (auto text = sys::read_file(dir + "/" + e.name, 1u << 20)) record = parse_state_record(*text);
    bool cgroups_gone = true;
    if (record)
      for (const auto& d : record->cgroup_dirs) {
        const auto slash = d.find_last_of('/');
        const std::string leaf = d.substr(slash + 1);
        if (!d.substr(0, slash).ends_with("/chrootctl")) continue;
        if (leaf != e.name && leaf != "launcher." + e.name) continue;
        if (!remove_cgroup(d)) cgroups_gone = false;
      }
    // A record whose cgroup is still there stays, with its id block: processes of the job may
    // still run under those ids.
    if (!cgroups_gone) continue;
    if (record && record->id_block && !claims_dir.empty()) free_claim(rep, claims_dir, *record->id_block, e.name);
    if (sys::unlink_at(fd->get(), e.name)) rep.removed_records.push_back(dir + "/" + e.name);
    else if (errno != ENOENT) rep.errors.push_back(str("unlink(", quote(dir + "/" + e.name), "): ", sys::errno_message(errno)));
  }
}
}  // namespace

CleanupReport cleanup_stale(cgroup::Fs& fs, const cgroup::Layout& layout, const std::string& state_dir, bool (*is_live)(const LaunchOwner&),
                            bool scan_bases, const std::optional<std::string>& claims_dir_arg) {
  if (!is_live) is_live = launch_is_live;
  CleanupReport rep;
  auto remove_cgroup = [&](const std::string& dir) {
    if (!fs.exists(dir)) return true;
    if (auto r = cgroup::destroy_dir(fs, dir); !r) {
      rep.errors.push_back(str("removing cgroup ", dir, ": ", r.error().what()));
      return false;
    }
    rep.removed_cgroups.push_back(dir);
    // Its base, once empty, when it sits inside another cgroup (a batch system's): an empty
    // leftover there would keep that cgroup from being removed. Bases at a hierarchy's root
    // are handled below.
    const std::string base = dir.substr(0, dir.find_last_of('/'));
    const std::string above = base.substr(0, base.find_last_of('/'));
    if (base.ends_with("/chrootctl") && !cgroup::is_hierarchy_root(layout, above) && fs.remove_dir_once(base)) rep.removed_cgroups.push_back(base);
    return true;
  };
  // 1. Records of dead launches: their cgroups first, then their id block, then the record.
  const std::string claims_dir = claims_dir_arg.value_or(id_claims_dir(state_dir));
  if (!state_dir.empty()) remove_dead_records(rep, claims_dir, state_dir + "/launches", is_live, remove_cgroup);
  // 2. Job cgroups without a record (the record was lost, or there is no state directory), then
  //    the base directories themselves once empty (rmdir fails while a launch uses one).
  if (!scan_bases) return rep;
  // 2a. Id block claims of dead launches without a record (killed between claim and record).
  if (!claims_dir.empty() && sys::lstat_path(claims_dir)) {
    if (auto c = detail::lock_claims(claims_dir)) {
      if (auto entries = sys::read_dir(c->dir.get(), false)) {
        for (const auto& [base, file] : detail::claimed_bases(*entries))
          if (detail::claim_is_stale(c->dir.get(), file, state_dir, is_live) && sys::unlink_at(c->dir.get(), file).has_value())
            rep.freed_id_blocks.push_back(str(claims_dir, "/", file));
      } else {
        rep.errors.push_back(entries.error().what());
      }
    } else {
      rep.errors.push_back(c.error().what());
    }
  }
  const auto bases = cgroup::base_dirs(fs, layout);
  for (const auto& base : bases) {
    auto subs = fs.subdirs(base);
    if (!subs) {
      rep.errors.push_back(subs.error().what());
      continue;
    }
    for (const auto& s : *subs) {
      auto owner = parse_launch_name(s);
      if (!owner) continue;
      if (is_live(*owner)) {
        if (std::find(rep.live.begin(), rep.live.end(), s) == rep.live.end()) rep.live.push_back(s);
        continue;
      }
      remove_cgroup(base + "/" + s);
    }
  }
  for (const auto& base : bases)
    if (fs.remove_dir_once(base)) rep.removed_cgroups.push_back(base);
  return rep;
}

Result<CleanupReport> cleanup_stale_here() {
  auto layout = TRY(cgroup::detect_layout());
  return cleanup_stale(cgroup::real_fs(), layout, default_state_dir());
}

}  // namespace chrootctl::launcher
