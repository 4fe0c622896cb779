// The image store: build locks, committing a build (staging directories are
// common/staging.hpp, shared with imports), the latest link and
// finding a cached build.
#include "store_internal.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/toml.hpp"

namespace chrootctl::builder::detail {

namespace {
Status ensure_dir(const std::string& path, mode_t mode) {
  TRY(sys::mkdir_path(path, mode, true));
  auto st = TRY(sys::lstat_path(path));
  if (!S_ISDIR(st.st_mode)) return fail(Errc::exists, str(quote(path), " exists and is not a directory"));
  return {};
}

}  // namespace

Result<LockFile> lock_recipe(const std::string& store, const std::string& name, const std::function<void(const std::string&)>& status) {
  const std::string path = str(store, "/.locks/", name, ".lock");
  auto lock = LockFile::acquire(path, true, true);
  if (lock) return lock;
  if (lock.error().code() != Errc::busy) return lock;
  if (status) status(str("waiting for another build of ", name, " to finish"));
  return LockFile::acquire(path, true, false);
}

Status commit(store::Staging& staging, const std::string& store, const std::string& name, const std::string& build_id, bool& existed) {
  existed = false;
  // Everything written so far reaches the disk before the image appears under its name.
  if (::syncfs(staging.fd.get()) != 0) return fail_errno(str("syncfs(", quote(staging.path), ")"), errno);
  // Reachable by root only (docs/catalogue.md, "Who can read what"): whatever the strip policy
  // kept is no host user's to run. Registering it under a name in readable_images opens it,
  // once its tree is known to hold nothing privileged (catalogue/access.hpp).
  if (::fchmod(staging.fd.get(), 0700) != 0) return fail_errno(str("fchmod(", quote(staging.path), ", 0700)"), errno);
  const std::string parent = str(store, "/", name);
  TRY(ensure_dir(parent, 0755));
  auto pfd = TRY(sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  auto sfd = TRY(sys::open_path(store + "/.staging", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  const std::string sname = staging.path.substr(staging.path.find_last_of('/') + 1);
  auto r = sys::rename_at(sfd.get(), sname, pfd.get(), build_id, RENAME_NOREPLACE);
  if (!r) {
    if (r.error().sys_errno() == EEXIST) {
      existed = true;
      return {};
    }
    return r;
  }
  staging.path.clear();  // it is the image now
  TRY(sys::fsync(pfd.get()));
  return set_latest(store, name, build_id);
}

Status set_latest(const std::string& store, const std::string& name, const std::string& build_id) {
  const std::string parent = str(store, "/", name);
  auto pfd = TRY(sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  // One name for the new link: only the holder of the recipe's lock gets here, and whatever a
  // build killed at this point left under it goes first (a name per pid would stay forever).
  const std::string tmp = ".latest.new";
  if (auto gone = sys::unlink_at(pfd.get(), tmp); !gone && gone.error().sys_errno() != ENOENT) return fail(std::move(gone.error()));
  auto cur = sys::readlink_at(pfd.get(), "latest");
  if (cur && *cur == build_id) return {};
  if (auto r = sys::symlink_at(build_id, pfd.get(), tmp); !r)
    return fail_errno(str("symlinkat(", quote(build_id), ", ", quote(parent + "/" + tmp), ")"), r.error().sys_errno());
  TRY(sys::rename_at(pfd.get(), tmp, pfd.get(), "latest"));
  return sys::fsync(pfd.get());
}

bool valid_build_id(std::string_view id) {
  if (id.size() != 21 || id[12] != '-') return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i == 12) continue;
    const char c = id[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> lock_value(const std::string& lock_path, const std::string& key) {
  auto doc = TRY(load_toml(lock_path));
  if (const auto* v = doc.table.get(key)) {
    if (const auto* s = v->as_string()) return s->get();
    if (const auto* i = v->as_integer()) return std::to_string(i->get());
  }
  return fail(Errc::parse, str(lock_path, ": no ", quote(key)));
}

bool complete_image(const std::string& build_dir) {
  for (const char* f : {"/manifest", "/lock", "/recipe.toml"}) {
    auto st = sys::lstat_path(build_dir + f);
    if (!st || !S_ISREG(st->st_mode)) return false;
  }
  auto st = sys::lstat_path(build_dir + "/root");
  if (st && S_ISDIR(st->st_mode)) return true;
  // A sealed build: its image file instead of the tree.
  auto image = sys::lstat_path(str(build_dir, "/", manifest::k_sealed_file));
  return image && S_ISREG(image->st_mode);
}

Result<std::optional<std::string>> find_cached(const std::string& store, const std::string& name, const std::string& key) {
  const std::string parent = str(store, "/", name);
  auto pfd = sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!pfd) return std::optional<std::string>();
  std::vector<std::string> candidates;
  const std::string prefix = key.substr(0, 12) + "-";
  for (const auto& e : TRY(sys::read_dir(pfd->get()))) {
    if (!valid_build_id(e.name) || !e.name.starts_with(prefix)) continue;
    const std::string dir = parent + "/" + e.name;
    if (!complete_image(dir)) continue;
    auto k = lock_value(dir + "/lock", "input_key");
    if (k && *k == "sha256:" + key) candidates.push_back(e.name);
  }
  if (candidates.empty()) return std::optional<std::string>();
  std::sort(candidates.begin(), candidates.end());
  auto latest = sys::readlink_at(pfd->get(), "latest");
  if (latest && std::find(candidates.begin(), candidates.end(), *latest) != candidates.end()) return std::optional<std::string>(*latest);
  return std::optional<std::string>(candidates.back());
}

}  // namespace chrootctl::builder::detail

namespace chrootctl::builder {

Result<std::size_t> clean_stale_staging(const std::string& store) { return store::clean_staging(store, nullptr); }

Result<std::string> store_latest(const std::string& store, const std::string& name) {
  if (!valid_recipe_name(name)) return fail(Errc::invalid_argument, str(quote(name), " is not an image name"));
  const std::string parent = str(store, "/", name);
  auto pfd = sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!pfd) return fail(Errc::not_found, str("no image ", quote(name), " in the store ", store, " (build it first: chrootctl build ", name, ")"));
  auto id = sys::readlink_at(pfd->get(), "latest");
  if (!id || !detail::valid_build_id(*id))
    return fail(Errc::not_found, str("the store has no complete build of ", quote(name), " (", parent, "/latest is missing)"));
  const std::string dir = parent + "/" + *id;
  if (!detail::complete_image(dir)) return fail(Errc::not_found, str(quote(dir), " is not a complete image"));
  return dir;
}

}  // namespace chrootctl::builder
