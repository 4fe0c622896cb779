// The full check of a sealed image file (sealed.hpp): apart from sealed.cpp, so that the front,
// which resolves sealed images but never checks their contents, links no libcryptsetup function
// for it.
#include <fcntl.h>
#include <sys/stat.h>

#include <thread>

#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/verity/verity.hpp"

namespace chrootctl::catalogue {

Status check_sealed_contents(const std::string& file, const manifest::Sealed& sealed) {
  Fd fd = TRY(sys::open_path(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  const auto st = TRY(sys::fstat(fd.get()));
  if (static_cast<std::uint64_t>(st.st_size) != sealed.size)
    return fail(Errc::mismatch, str(file, " has ", st.st_size, " bytes, not the recorded ", sealed.size));
  // libcryptsetup reads the hash tree's blocks while this thread hashes the whole file; whichever
  // is behind finds the other's reads in the page cache.
  Status tree;
  std::thread checker([&] { tree = verity::verify(file, sealed); });
  auto whole = sha256_fd(fd.get(), file, false, sealed.size);
  checker.join();
  if (!whole) return fail(std::move(whole.error()));
  if (whole->hex != sealed.sha256)
    return fail(Errc::mismatch, str(file, " has SHA-256 ", whole->hex, ", not the recorded ", sealed.sha256, " (the file was changed)"));
  return tree;
}

}  // namespace chrootctl::catalogue
