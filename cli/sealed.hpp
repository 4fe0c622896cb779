#pragma once
// Sealed images for the verbs that launch or mount them (run, condor-wrapper, mount, unmount,
// cleanup): the launcher's sealed-image module (launcher/sealed.hpp) wired to libcryptsetup
// (chrootctl::verity, loaded by the front only when a dm-verity device is made or removed) and
// to SHA-256 (libcrypto, likewise), with the site's settings.

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/launcher/sealed.hpp"

namespace chrootctl::cli {

launcher::sealed::Backend sealed_backend();
launcher::sealed::Options sealed_options(const Settings& settings);
/// The image a sealed catalogue version records (its root is the image file).
launcher::sealed::Image sealed_image(const catalogue::Version& v);

}  // namespace chrootctl::cli
