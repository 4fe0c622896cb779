// Sealed image files in the catalogue: trust and identity (sealed.hpp). The full check is in
// sealed_check.cpp, which the front (resolve, run) does not link.
#include "chrootctl/catalogue/sealed.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::catalogue {

Result<RootIdentity> check_sealed_file(const std::string& file) {
  TRY(check_plain_path(file));
  TRY(check_trusted_ancestors(file));
  const auto st = TRY(sys::lstat_path(file));
  TRY(check_trusted_file(st, file));
  return identity_of(st);
}

Result<RootIdentity> check_version_root(const Version& v) { return v.sealed ? check_sealed_file(v.root) : check_root(v.root); }

}  // namespace chrootctl::catalogue
