// The seal step of a sealed build (docs/sealed.md): the stripped, manifested tree becomes one
// read-only EROFS image file with a dm-verity hash tree appended, made by the distribution's
// tools (mkfs.erofs from erofs-utils, libcryptsetup), and the tree is removed.
//
// Reproducible: mkfs.erofs sorts every directory itself (the staging tree's readdir order does
// not matter), takes SOURCE_DATE_EPOCH as the filesystem's time and keeps each file's own mtime
// (already clamped to it by the strip step), and gets a UUID derived from the tree digest; the
// verity superblock gets a UUID and a salt derived from it too. The same tree therefore gives
// the same file and root hash (tested by building twice).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_internal.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/verity/verity.hpp"

namespace chrootctl::builder::detail {

Result<manifest::Sealed> seal_tree(const BuildContext& c, const std::string& tree_digest) {
  const std::string image = c.staging + "/" + manifest::k_sealed_file;
  const std::string uuid = verity::uuid_from_digest(Sha256::hex("chrootctl erofs uuid " + tree_digest));
  // Every file of the tree as it is: owners, modes, xattrs, hard links, device nodes, mtimes
  // with their nanoseconds; no compression (measured in docs/benchmarks.md: reads of the
  // uncompressed image are the fastest, and its size is the tree's).
  TRY(run_tool(c, "seal", {"mkfs.erofs", "--quiet", "-U" + uuid, image, c.root}));
  const std::string salt = Sha256::hex("chrootctl verity salt " + tree_digest);
  const verity::Formatted f = TRY(verity::format(image, salt, verity::uuid_from_digest(Sha256::hex("chrootctl verity uuid " + tree_digest))));
  manifest::Sealed s;
  s.format = "erofs";
  s.size = f.size;
  s.hash_offset = f.hash_offset;
  s.root_hash = f.root_hash;
  s.salt = salt;
  {
    Fd fd = TRY(sys::open_path(image, O_RDONLY | O_NOFOLLOW));
    if (::fchmod(fd.get(), 0644) != 0) return fail_errno(str("fchmod(", quote(image), ", 0644)"), errno);
    s.sha256 = TRY(sha256_fd(fd.get(), image, false, f.size)).hex;
  }
  c.log(str("sealed: ", manifest::sealed_line(s)));
  // Only the image file stays: the tree it was made from is not what jobs run.
  TRY(with_context(sys::remove_tree(c.root), str("removing the tree sealed into ", image)));
  return s;
}

Result<launcher::sealed::Share> mount_sealed_base(const std::string& image_dir, const manifest::Sealed& sealed) {
  launcher::sealed::Backend b;
  b.sha256_file = [](int fd, const std::string& label) -> Result<std::string> { return TRY(sha256_fd(fd, label, false, UINT64_MAX)).hex; };
  b.activate = [](const std::string& device, const std::string& name, const manifest::Sealed& s) { return verity::activate(device, name, s); };
  b.deactivate = [](const std::string& name) { return verity::deactivate(name, true); };
  launcher::sealed::Options o;
  o.state_dir = launcher::sealed::mounts_state_dir();
  const std::string holder = TRY(launcher::sealed::holder_for_self());
  return with_context(launcher::sealed::Share::acquire({str(image_dir, "/", manifest::k_sealed_file), sealed}, o, b, holder),
                      str("mounting the sealed base image ", image_dir));
}

}  // namespace chrootctl::builder::detail
