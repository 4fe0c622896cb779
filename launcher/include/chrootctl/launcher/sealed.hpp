#pragma once
/// Sealed images on a node (docs/sealed.md): one read-only filesystem image file per image, with
/// a dm-verity hash tree, mounted once per node and shared by every launch that uses it.
///
///   STATE/sealed/KEY/            KEY: the image file's SHA-256; root-owned, 0755, flock-held
///                                while a launch changes it
///   STATE/sealed/KEY/state       the mount's record: the file, its identity, the dm device
///   STATE/sealed/KEY/device      the block device node the mount is made from (0600)
///   STATE/sealed/KEY/root/       the mount: read-only, nosuid, nodev; the root a job opens
///   STATE/sealed/KEY/holders/N   one per launch using it, named like a launch record
///                                (PID.STARTTIME.N, live while that process is), or "kept"
///   STATE/sealed/checked/KEY     without dm-verity: the identity of the file whose SHA-256
///                                was checked since boot
///
/// A launch takes a share (`Share::acquire`): under the KEY directory's flock it drops the
/// holders of dead launches, mounts the image if it is not mounted (loop device, then dm-verity
/// where the kernel has device-mapper, else a SHA-256 check of the file once per boot per
/// identity), and adds its holder. Releasing it removes the holder and, when it was the last
/// and the site does not keep mounts, unmounts (the loop device goes with its last user, the dm
/// device is removed once unused). `reclaim` (chrootctl cleanup) does the same for the holders
/// of killed launchers. The launcher then runs the job in STATE/sealed/KEY/root like in a
/// directory root, pinned by its device and inode.
///
/// The dm-verity device is made and removed by libcryptsetup, which the launcher does not link:
/// the caller passes those operations in (`Backend`), as well as SHA-256.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher::sealed {

/// A sealed image as the catalogue recorded it.
struct Image {
  std::string file;         ///< absolute path of the image file
  manifest::Sealed sealed;  ///< its manifest's #sealed line
};

/// What the launcher cannot do itself.
struct Backend {
  /// SHA-256 (hex) of the whole file behind `fd`, read from offset 0; `label` names it in errors.
  std::function<Result<std::string>(int fd, const std::string& label)> sha256_file;
  /// Activates the read-only dm-verity device `name` over the block device `device` (verity::activate).
  std::function<Status(const std::string& device, const std::string& name, const manifest::Sealed& sealed)> activate;
  /// Removes the dm device `name` once it is unused (verity::deactivate, deferred).
  std::function<Status(const std::string& name)> deactivate;
};

enum class VerityPolicy {
  automatic,  ///< dm-verity where the kernel has device-mapper, else the SHA-256 check
  never,      ///< always the SHA-256 check (config `sealed_verity = false`)
};

struct Options {
  std::string state_dir;      ///< STATE (mounts_state_dir())
  bool keep_mounted = false;  ///< config `sealed_keep_mounted`: a mount stays when its last user ends
  VerityPolicy verity = VerityPolicy::automatic;
};

/// A launch's use of an image's shared mount. Released (holder removed, and the mount with the
/// last one unless kept) on destruction or by `release`.
class Share {
 public:
  /// As root: mounts the image if needed and adds `holder` (a launch name PID.STARTTIME.N of a
  /// live process, or "kept") to its users. Refused when the file is not a root-owned regular
  /// file unwritable by others, has another size than recorded, or (without dm-verity) does not
  /// have the recorded SHA-256, or changed since it was checked.
  static Result<Share> acquire(const Image& image, const Options& options, const Backend& backend, const std::string& holder);
  /// Without root: the mount a root launch or `chrootctl mount` made, if the image is mounted;
  /// holds nothing. Refused, naming `chrootctl mount` and `chrootctl publish`, otherwise.
  static Result<Share> existing(const Image& image, const Options& options);

  Share(Share&& o) noexcept;
  Share& operator=(Share&&) = delete;
  Share(const Share&) = delete;
  ~Share();

  /// STATE/sealed/KEY/root
  [[nodiscard]] const std::string& root() const { return m_root; }
  /// The mounted root's device and inode, for LaunchPlan::root_id.
  [[nodiscard]] RootId root_id() const { return m_root_id; }
  /// The dm-verity device name, or empty without dm-verity.
  [[nodiscard]] const std::string& dm_name() const { return m_dm; }
  /// VerityState::verified or corrupted as dm-verity reports it now ("corrupted": a block read
  /// since the device was made did not match the hash tree, and the read failed with EIO);
  /// VerityState::none without dm-verity.
  [[nodiscard]] Result<VerityState> verity_state() const;
  /// Keeps the holder when this object goes (`chrootctl mount`: the hold outlives the command).
  void keep() { m_holder.clear(); }
  /// Releases the share now (see the class).
  Status release();

 private:
  Share() = default;
  Options m_options;
  Backend m_backend;
  std::string m_key_dir;  ///< STATE/sealed/KEY
  std::string m_holder;   ///< empty: nothing to release
  std::string m_root;
  RootId m_root_id;
  std::string m_dm;
};

/// Removes `holder` from the users of `image`'s mount and unmounts it when none is left, even
/// when the site keeps mounts (`chrootctl unmount`: the site asks for it). Not an error when it
/// held nothing.
Status release_hold(const Image& image, const Options& options, const Backend& backend, const std::string& holder);

/// What `reclaim` did.
struct ReclaimReport {
  std::vector<std::string> released;   ///< holder files of dead launches removed
  std::vector<std::string> unmounted;  ///< mounts removed (their STATE/sealed/KEY directory)
  std::vector<std::string> live;       ///< mounts left in use
  std::vector<std::string> errors;
};
/// `chrootctl cleanup`: in every STATE/sealed/KEY, drops the holders of dead launches (and the
/// "kept" hold of an image file that is gone or was replaced) and unmounts those left without a
/// holder (unless mounts are kept and the image file is still there).
ReclaimReport reclaim(const Options& options, const Backend& backend);

/// The holder name of a launch by the calling process (PID.STARTTIME.N, like a launch record).
Result<std::string> holder_for_self();
/// The holder name for the live process `pid` (PID.STARTTIME.0): `chrootctl mount --hold-for PID`,
/// for a batch system's process that lives as long as its job (slurmstepd).
Result<std::string> holder_for(pid_t pid);
/// The holder that `chrootctl mount` without --hold-for takes: never stale.
inline constexpr const char* k_kept_holder = "kept";

/// Where the shared mounts live, whoever launches: they are root's, so a launcher without root
/// looks for them in root's state directory, /run/chrootctl ($CHROOTCTL_STATE_DIR for tests).
std::string mounts_state_dir();

/// The key of an image's mount: its file's SHA-256.
std::string key_dir(const Options& options, const Image& image);

}  // namespace chrootctl::launcher::sealed
