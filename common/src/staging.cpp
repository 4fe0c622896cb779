// The image store's staging directories, shared by builds and imports.
#include "chrootctl/common/staging.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::store {

Status ensure_private_dir(const std::string& path) {
  TRY(sys::mkdir_path(path, 0700, true));
  auto fd = TRY(sys::open_path(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  auto st = TRY(sys::fstat(fd.get()));
  if (st.st_uid != ::geteuid()) return fail(Errc::permission, str(quote(path), " is owned by uid ", st.st_uid, ", not ", ::geteuid()));
  if ((st.st_mode & 07777) != 0700 && ::fchmod(fd.get(), 0700) != 0) return fail_errno(str("fchmod(", quote(path), ", 0700)"), errno);
  return {};
}

Status prepare(const std::string& store) {
  TRY(sys::mkdir_p(store, 0755));
  TRY(ensure_private_dir(store + "/.staging"));
  TRY(ensure_private_dir(store + "/.locks"));
  return {};
}

Staging::~Staging() {
  if (!path.empty()) (void)sys::remove_tree(path);
}

Result<Staging> create_staging(const std::string& store, const std::string& name) {
  auto guard = TRY(LockFile::acquire(store + "/.locks/staging.lock"));
  const std::string tmpl = TRY(sys::mkdtemp(str(store, "/.staging/", name, ".XXXXXX")));
  Staging s;
  s.path = tmpl;  // removed from here on if anything fails
  s.fd = TRY(sys::open_path(tmpl, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  TRY(sys::flock(s.fd.get(), true, true));
  return s;
}

Result<std::size_t> clean_staging(const std::string& store, std::vector<std::string>* problems) {
  const std::string dir = store + "/.staging";
  auto dfd = sys::open_path(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!dfd) return dfd.error().code() == Errc::not_found ? Result<std::size_t>(0) : fail(dfd.error());
  std::vector<std::pair<std::string, Fd>> dead;
  {
    auto guard = TRY(LockFile::acquire(store + "/.locks/staging.lock"));
    for (const auto& e : TRY(sys::read_dir(dfd->get()))) {
      auto fd = sys::open_at(dfd->get(), e.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (!fd) {
        dead.emplace_back(e.name, Fd());  // not a directory: junk
        continue;
      }
      if (!sys::flock(fd->get(), true, true)) continue;  // a live build or import holds it
      dead.emplace_back(e.name, std::move(*fd));
    }
  }
  std::size_t removed = 0;
  for (auto& [name, fd] : dead) {
    if (auto r = sys::remove_tree_at(dfd->get(), name); !r) {
      if (problems) problems->push_back(str("could not remove stale staging ", dir, "/", name, ": ", r.error().what()));
      continue;
    }
    ++removed;
  }
  return removed;
}

}  // namespace chrootctl::store
