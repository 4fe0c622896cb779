// Id mapping of a job's user namespace and of its idmapped mounts: pure functions (no system
// call), unit-tested in tests/unit/launcher_idmap_test.cpp.
#include "chrootctl/launcher/idmap.hpp"

#include <algorithm>
#include <set>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher {

namespace {

// The kernel takes at most 340 lines per map (UID_GID_MAP_MAX_EXTENTS, Linux 4.15 and later).
constexpr std::size_t k_max_extents = 340;

// Consecutive ids as one extent each: [first, first + count).
std::vector<std::pair<std::uint32_t, std::uint32_t>> runs_of(const std::set<std::uint32_t>& ids) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
  for (std::uint32_t id : ids) {
    if (!out.empty() && out.back().first + out.back().second == id) ++out.back().second;
    else out.emplace_back(id, 1);
  }
  return out;
}

// Inside ids 0..65535 to the block, except `identity` ids, which map to themselves (runs of
// consecutive ids as one line); identity ids above 65535 get lines of their own.
Result<std::vector<IdExtent>> build_map(IdMode mode, std::uint32_t block_base, const std::set<std::uint32_t>& identity, const char* what) {
  std::vector<IdExtent> out;
  const auto runs = runs_of(identity);
  if (mode == IdMode::mapped) {
    for (std::uint32_t id : identity)
      if (id >= block_base && id - block_base < k_id_block_size)
        return fail(Errc::invalid_argument,
                    str("the job's ", what, " ", id, " lies in the id block ", block_base, "-", block_base + k_id_block_size - 1,
                        " claimed for its user namespace; the site's job_ids range must not hold real users"));
    std::uint32_t next = 0;
    for (const auto& [first, count] : runs) {
      if (first >= k_id_block_size) break;
      const std::uint32_t inside = std::min(count, k_id_block_size - first);
      if (first > next) out.push_back({next, block_base + next, first - next});
      out.push_back({first, first, inside});
      next = first + inside;
    }
    if (next < k_id_block_size) out.push_back({next, block_base + next, k_id_block_size - next});
    for (const auto& [first, count] : runs) {
      if (first + count <= k_id_block_size) continue;
      const std::uint32_t start = std::max(first, k_id_block_size);
      out.push_back({start, start, first + count - start});
    }
  } else {
    for (const auto& [first, count] : runs) out.push_back({first, first, count});
  }
  if (out.size() > k_max_extents)
    return fail(Errc::invalid_argument, str("the job's ", what, "s need ", out.size(), " lines in the id map; the kernel takes at most ",
                                            k_max_extents, " (too many supplementary groups?)"));
  return out;
}

}  // namespace

Status check_id_range(const IdRange& r) {
  const std::uint64_t end = std::uint64_t{r.start} + r.count;
  if (r.count == 0 || r.count % k_id_block_size != 0)
    return fail(Errc::invalid_argument, str("job_ids: count ", r.count, " must be a positive multiple of ", k_id_block_size));
  if (r.start < k_id_block_size)
    return fail(Errc::invalid_argument,
                str("job_ids: start ", r.start, " must be at least ", k_id_block_size, " (the range is for ids no host user has)"));
  if (end > 0xFFFFFFFFull) return fail(Errc::invalid_argument, str("job_ids: the range ", r.start, "+", r.count, " goes past 4294967294"));
  return {};
}

Result<IdMaps> job_id_maps(IdMode mode, std::uint32_t block_base, const Credentials& c) {
  if (mode == IdMode::identity && c.uid == 0)
    return fail(Errc::permission, "a job as root needs its own id block, and this launch can only map the job's own ids");
  if (mode == IdMode::identity && c.gid == 0)
    return fail(Errc::permission, str("the job user's group is root (gid 0), which a job may only have in its own id block, and this "
                                      "launch can only map the job's own ids"));
  std::set<std::uint32_t> uids, gids;
  if (c.uid != 0) uids.insert(c.uid);
  if (c.gid != 0) gids.insert(c.gid);
  for (gid_t g : c.groups)
    if (g != 0) gids.insert(g);
  IdMaps m;
  m.uid = TRY(build_map(mode, block_base, uids, "uid"));
  m.gid = TRY(build_map(mode, block_base, gids, "gid"));
  return m;
}

std::optional<std::uint32_t> host_id(const std::vector<IdExtent>& map, std::uint32_t inside) {
  for (const auto& e : map)
    if (inside >= e.inside && inside - e.inside < e.count) return e.outside + (inside - e.inside);
  return std::nullopt;
}

std::string id_map_text(const std::vector<IdExtent>& map) {
  std::string out;
  for (const auto& e : map) out += str(e.inside, " ", e.outside, " ", e.count, "\n");
  return out;
}

Result<IdDecision> decide_ids(const IdFacts& f) {
  IdDecision d;
  if (f.unprivileged) return d;  // the caller's own ids, bound by init from their paths
  if (!f.mount_api) {
    if (f.root_job)
      return fail(Errc::unsupported, str("a job as root needs idmapped mounts (open_tree and mount_setattr, Linux 5.12 or later); "
                                         "this kernel is ",
                                         f.kernel_major, ".", f.kernel_minor, " (run the job as another user with --user)"));
    return d;
  }
  d.detached = true;
  for (std::size_t i = 0; i < f.image_filesystems.size(); ++i) {
    const auto& [path, fs] = f.image_filesystems[i];
    auto why = idmap_unsupported(fs, f.kernel_major, f.kernel_minor);
    if (!why) continue;
    if (f.root_job)
      return fail(Errc::unsupported, str("a job as root needs its image mounted idmapped, and ",
                                         i == 0 ? str("the image ", f.image) : str("the image's submount ", path), " is on ", *why,
                                         " (run the job as another user with --user)"));
    return d;
  }
  if (f.root_job)
    for (const auto& [path, fs] : f.owner_mapped)
      if (auto why = idmap_unsupported(fs, f.kernel_major, f.kernel_minor))
        return fail(Errc::unsupported, str("a job as root writes to ", path, " through an idmapped mount, and it is on ", *why));
  d.mode = IdMode::mapped;
  return d;
}

IdMaps owner_id_maps(uid_t owner_uid, gid_t owner_gid, std::uint32_t job_host_uid, std::uint32_t job_host_gid) {
  return IdMaps{{{owner_uid, job_host_uid, 1}}, {{owner_gid, job_host_gid, 1}}};
}

const std::vector<IdmapFilesystem>& idmap_filesystems() {
  // From each filesystem's FS_ALLOW_IDMAP in Linux: ext4, xfs and FAT with the feature itself.
  // EROFS (sealed images) since 5.19 ("erofs: support idmapped mounts"); checked against the
  // kernel itself by tests/privileged/idmap_erofs_test.cpp, on 6.18 and in the VM stage on 6.1.
  static const std::vector<IdmapFilesystem> k_known{
      {0xEF53, "ext4", 5, 12},      {0x58465342, "xfs", 5, 12},     {0x4d44, "vfat", 5, 12},
      {0x9123683E, "btrfs", 5, 15}, {0xF2F52010, "f2fs", 5, 18},    {0x794c7630, "overlay", 5, 19},
      {0xE0F5E1E2, "erofs", 5, 19}, {0x73717368, "squashfs", 6, 2}, {0x01021994, "tmpfs", 6, 3},
  };
  return k_known;
}

std::string filesystem_name(std::uint64_t magic) {
  for (const auto& f : idmap_filesystems())
    if (f.magic == magic) return f.name;
  static const struct {
    std::uint64_t magic;
    const char* name;
  } k_others[] = {{0x6969, "nfs"},           {0x65735546, "fuse"}, {0xFF534D42, "cifs"},  {0xFE534D42, "smb2"},
                  {0x01021997, "9p"},        {0x00C36400, "ceph"}, {0x47504653, "gpfs"},  {0x0BD00BD0, "lustre"},
                  {0x6A656A63, "fakeowner"}, {0x2FC12FC1, "zfs"},  {0x62656572, "sysfs"}, {0x9FA0, "proc"}};
  for (const auto& o : k_others)
    if (o.magic == magic) return o.name;
  return str("filesystem type 0x", hex_number(magic));
}

std::optional<std::string> idmap_unsupported(std::uint64_t magic, int major, int minor) {
  for (const auto& f : idmap_filesystems()) {
    if (f.magic != magic) continue;
    if (major > f.major || (major == f.major && minor >= f.minor)) return std::nullopt;
    return str(f.name, " can be mounted idmapped from Linux ", f.major, ".", f.minor, " on; this kernel is ", major, ".", minor);
  }
  return str(filesystem_name(magic),
             " cannot be mounted idmapped (idmapped mounts need ext4, xfs, btrfs, f2fs, vfat, "
             "overlay, erofs, squashfs or tmpfs, and Linux 5.12 or later)");
}

}  // namespace chrootctl::launcher
