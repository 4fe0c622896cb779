// The sealed-image module's backend and options (sealed.hpp).
#include "sealed.hpp"

#include <unistd.h>

#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/verity/verity.hpp"

namespace chrootctl::cli {

launcher::sealed::Backend sealed_backend() {
  launcher::sealed::Backend b;
  b.sha256_file = [](int fd, const std::string& label) -> Result<std::string> {
    auto h = TRY(sha256_fd(fd, label, false, UINT64_MAX));
    return h.hex;
  };
  b.activate = [](const std::string& device, const std::string& name, const manifest::Sealed& s) { return verity::activate(device, name, s); };
  b.deactivate = [](const std::string& name) { return verity::deactivate(name, true); };
  return b;
}

launcher::sealed::Options sealed_options(const Settings& settings) {
  launcher::sealed::Options o;
  o.state_dir = launcher::sealed::mounts_state_dir();
  o.keep_mounted = settings.sealed_keep_mounted;
  o.verity = settings.sealed_verity ? launcher::sealed::VerityPolicy::automatic : launcher::sealed::VerityPolicy::never;
  return o;
}

launcher::sealed::Image sealed_image(const catalogue::Version& v) { return {v.root, v.sealed.value_or(manifest::Sealed{})}; }

Result<launcher::sealed::Share> mount_for_reading(const Settings& settings, const std::string& file, const manifest::Sealed& sealed) {
  const launcher::sealed::Image image{file, sealed};
  if (::geteuid() != 0) return launcher::sealed::Share::existing(image, sealed_options(settings));
  const std::string holder = TRY(launcher::sealed::holder_for_self());
  return launcher::sealed::Share::acquire(image, sealed_options(settings), sealed_backend(), holder);
}

catalogue::SealedTreeCheck sealed_tree_check(const Settings& settings, unsigned threads) {
  return [&settings, threads](const std::string& file, const manifest::Sealed& sealed, const manifest::Manifest& m) -> Status {
    auto share = TRY(with_context(mount_for_reading(settings, file, sealed), "mounting it to check it against its manifest"));
    manifest::CreateOptions o;
    o.threads = threads;
    const auto d = TRY(manifest::check(share.root(), m, o));
    if (d.differs_beyond_mtime())
      return fail(Errc::mismatch, str("the filesystem in ", file, " is not the tree its manifest describes (", catalogue::count_differences(d),
                                      "):\n", catalogue::listing(d)));
    return {};
  };
}

}  // namespace chrootctl::cli
