// gc: remove build directories that no catalogue version refers to.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <set>

#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::catalogue {

namespace {

constexpr const char* k_trash_prefix = ".gc-";
// A trash directory this old was left by a gc that was killed before it finished deleting.
constexpr std::int64_t k_stale_trash = 3600;

bool inside(const std::string& path, const std::string& dir) { return path == dir || starts_with(path, dir + "/"); }

}  // namespace

Result<GcReport> gc(const Settings& s, const GcOptions& o) {
  GcReport rep;
  const std::int64_t now = o.now ? o.now : sys::now_unix();
  auto store_r = canonical_path(s.store);
  if (!store_r) {
    if (store_r.error().sys_errno() == ENOENT) return rep;
    return fail(store_r.error());
  }
  const std::string store = *store_r;
  std::string trash;
  std::vector<std::string> stale_trash;

  auto work = [&](Catalogue& c) -> Status {
    rep = GcReport{};
    if (o.keep) {
      for (auto& e : c.entries) {
        while (e.previous.size() > *o.keep) {
          rep.trimmed.push_back({e.name, e.previous.back().build_id, e.previous.back().image});
          e.previous.pop_back();
        }
      }
    }
    std::set<std::string> images;
    std::vector<std::string> roots;
    for (const auto& e : c.entries) {
      images.insert(e.current.image);
      roots.push_back(e.current.root);
      for (const auto& p : e.previous) {
        images.insert(p.image);
        roots.push_back(p.root);
      }
    }
    auto dir = TRY(sys::open_dir(store));
    for (const auto& d : TRY(sys::read_dir(dir.get(), false))) {
      if (d.name.empty()) continue;
      if (d.name[0] == '.') {
        if (starts_with(d.name, k_trash_prefix)) {
          auto st = sys::lstat_at(dir.get(), d.name);
          if (st && S_ISDIR(st->st_mode) && now - st->st_mtime > k_stale_trash) stale_trash.push_back(str(store, "/", d.name));
        }
        continue;
      }
      auto st = sys::lstat_at(dir.get(), d.name);
      if (!st || !S_ISDIR(st->st_mode)) continue;
      auto sub = sys::open_dir_at(dir.get(), d.name);
      if (!sub) {
        rep.errors.push_back(sub.error().what());
        continue;
      }
      // The builder's STORE/NAME/latest names the image a rebuild with unchanged inputs reuses.
      std::string latest;
      if (auto l = sys::readlink_at(sub->get(), "latest"); l && l->find('/') == std::string::npos) latest = *l;
      auto builds = sys::read_dir(sub->get(), false);
      if (!builds) {
        rep.errors.push_back(builds.error().what());
        continue;
      }
      for (const auto& b : *builds) {
        if (b.name.empty() || b.name[0] == '.') continue;  // staging and temporary directories are not ours
        auto bst = sys::lstat_at(sub->get(), b.name);
        if (!bst || !S_ISDIR(bst->st_mode)) continue;
        const std::string path = str(store, "/", d.name, "/", b.name);
        auto mst = sys::lstat_path(path + "/manifest");
        if (!mst || !S_ISREG(mst->st_mode)) continue;  // not a complete build directory
        if (images.count(path) || b.name == latest) continue;
        bool holds_root = false;
        for (const auto& r : roots) holds_root = holds_root || inside(r, path);
        if (holds_root) continue;
        if (now - bst->st_mtime < o.min_age) {
          rep.too_new.push_back(path);
          continue;
        }
        if (o.dry_run) {
          rep.removed.push_back(path);
          continue;
        }
        if (trash.empty()) {
          trash = TRY(sys::mkdtemp(str(store, "/", k_trash_prefix, "XXXXXX")));
        }
        // Renamed under the lock: a concurrent add of this directory then fails instead of
        // registering a tree that is being deleted.
        const std::string dest = str(trash, "/", rep.removed.size());
        if (auto r = sys::rename_at(AT_FDCWD, path, AT_FDCWD, dest); !r) {
          rep.errors.push_back(r.error().what());
          continue;
        }
        rep.removed.push_back(path);
      }
    }
    return {};
  };

  if (o.dry_run) {
    auto c = TRY(load(s));
    TRY(work(c));
    return rep;
  }
  TRY(edit(s, work));
  if (!trash.empty()) {
    if (auto r = sys::remove_tree(trash); !r) rep.errors.push_back(r.error().what());
  }
  for (const auto& t : stale_trash)
    if (auto r = sys::remove_tree(t); !r) rep.errors.push_back(r.error().what());
  return rep;
}

}  // namespace chrootctl::catalogue
