#pragma once
/// How a job's ids meet the host's. Every job runs in a user namespace of its own, and no id
/// inside it maps to host uid or gid 0 (docs/launcher.md, "User namespace and id mapping"):
///
///   mapped    inside ids 0..65535 map to a block of 65,536 host ids that the launch claims
///             from the site's range (config `job_ids`) for as long as it runs; the job's own
///             non-root uid, gid and supplementary groups map to themselves. The image is
///             mounted idmapped with the same mapping, so its root-owned files are root's inside.
///   identity  only the job's own uid and gids map, to themselves (kernels or filesystems
///             without idmapped mounts, and unprivileged launchers); image files of other
///             owners show as the overflow id. A job as root is refused.
///
/// Everything here is pure and unit-tested (tests/unit/launcher_idmap_test.cpp).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl::launcher {

struct Credentials;

/// Ids per job: a whole 16-bit id space, as /etc/subuid gives a container.
inline constexpr std::uint32_t k_id_block_size = 65536;

/// The host ids set aside for jobs' user namespaces (`job_ids = { start, count }` in the
/// config). The default, 1879048192 (0x70000000) and 1024 blocks, lies above systemd's range
/// for containers (up to 0x6FFFFFFF) and below the ids systemd reserves at 0x7FFE0000.
struct IdRange {
  std::uint32_t start = 0x70000000u;
  std::uint32_t count = 1024 * k_id_block_size;
  friend bool operator==(const IdRange&, const IdRange&) = default;
};
/// Checks a range: whole blocks, at least one, above 65,535 and below 2^32 - 1.
Status check_id_range(const IdRange& range);

/// One line of uid_map or gid_map.
struct IdExtent {
  std::uint32_t inside = 0;
  std::uint32_t outside = 0;
  std::uint32_t count = 0;
  friend bool operator==(const IdExtent&, const IdExtent&) = default;
};

struct IdMaps {
  std::vector<IdExtent> uid;
  std::vector<IdExtent> gid;
};

enum class IdMode { mapped, identity };

/// The maps of the job's user namespace. `block_base` is the first host id of the claimed
/// block (mapped mode only). The job's uid, gid and supplementary groups other than 0 map to
/// themselves; in mapped mode every other inside id below 65,536 maps into the block. Fails if
/// one of the job's own ids lies inside the block, if the job is root in identity mode, or if
/// the map would need more lines than the kernel takes.
Result<IdMaps> job_id_maps(IdMode mode, std::uint32_t block_base, const Credentials& creds);

/// The host id that `inside` maps to, if any.
std::optional<std::uint32_t> host_id(const std::vector<IdExtent>& map, std::uint32_t inside);

/// "INSIDE OUTSIDE COUNT\n" lines, as /proc/PID/uid_map takes them.
std::string id_map_text(const std::vector<IdExtent>& map);

/// What the launcher knows, before the clone, that decides how a job's ids are mapped.
struct IdFacts {
  bool unprivileged = false;  ///< the launcher is not root
  bool mount_api = false;     ///< open_tree, move_mount and mount_setattr exist (Linux 5.12+)
  int kernel_major = 0;
  int kernel_minor = 0;
  std::string image;  ///< the image root's path, for messages
  /// statfs type of the image root, then of each mount below it (path, type): the image is
  /// idmapped with its submounts, all or nothing.
  std::vector<std::pair<std::string, std::uint64_t>> image_filesystems;
  bool root_job = false;
  /// Writable sources that a job as root gets idmapped to its sandbox's owner: path and type.
  std::vector<std::pair<std::string, std::uint64_t>> owner_mapped;
};
struct IdDecision {
  IdMode mode = IdMode::identity;
  /// The launcher hands init the image and sources as detached mounts (open_tree), which it
  /// can idmap; otherwise init binds them from their paths (unprivileged, or before 5.12).
  bool detached = false;
};
/// Mapped where the launcher is root, the kernel has the mount API and the image's filesystems
/// (its root's and its submounts') can be idmapped (and, for a job as root, those of its
/// writable sources too); identity otherwise, which a job as root is refused (with the
/// filesystem and the kernel it needs).
Result<IdDecision> decide_ids(const IdFacts& facts);

/// The mapping of a root job's idmapped sandbox (and of its scratch directories and read-write
/// binds): the owner's ids on disk are the job's ids (as the host sees them), so what the job
/// writes lands on disk owned by the sandbox's owner, the user the job runs for.
IdMaps owner_id_maps(uid_t owner_uid, gid_t owner_gid, std::uint32_t job_host_uid, std::uint32_t job_host_gid);

/// A filesystem the kernel can mount idmapped from some version on (FS_ALLOW_IDMAP).
struct IdmapFilesystem {
  std::uint64_t magic;  ///< statfs f_type
  const char* name;
  int major, minor;  ///< first kernel version that allows it
};
/// The known filesystems (ext4, xfs, btrfs, tmpfs, ...); a filesystem not listed is taken as
/// one that cannot be idmapped (NFS, FUSE, CIFS, 9p, ...).
const std::vector<IdmapFilesystem>& idmap_filesystems();
/// A name for a statfs type ("ext4", "nfs", or the number in hex).
std::string filesystem_name(std::uint64_t magic);
/// Whether the filesystem `magic` can be mounted idmapped on kernel major.minor; if not, why
/// (naming the filesystem and the kernel it needs).
std::optional<std::string> idmap_unsupported(std::uint64_t magic, int major, int minor);

}  // namespace chrootctl::launcher
