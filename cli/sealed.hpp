#pragma once
// Sealed images for the verbs that launch or mount them (run, condor-wrapper, mount, unmount,
// cleanup): the launcher's sealed-image module (launcher/sealed.hpp) wired to libcryptsetup
// (chrootctl::verity, loaded by the front only when a dm-verity device is made or removed) and
// to SHA-256 (libcrypto, likewise), with the site's settings.

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/launcher/sealed.hpp"

namespace chrootctl::cli {

launcher::sealed::Backend sealed_backend();
launcher::sealed::Options sealed_options(const Settings& settings);
/// The image a sealed catalogue version records (its root is the image file).
launcher::sealed::Image sealed_image(const catalogue::Version& v);

/// The shared mount of a sealed image, to read its tree (audit, diff): as root, a share held by
/// this process (made if needed, released when the object goes); otherwise the mount a launch or
/// `chrootctl mount` made, or a refusal saying how to get one.
Result<launcher::sealed::Share> mount_for_reading(const Settings& settings, const std::string& file, const manifest::Sealed& sealed);

/// The check of a sealed image's filesystem against its manifest for add, sign and verify
/// (catalogue/sealed.hpp): mounted for reading, then every entry hashed and compared.
catalogue::SealedTreeCheck sealed_tree_check(const Settings& settings, unsigned threads);

}  // namespace chrootctl::cli
