// chrootctl add --from DIR: register published builds, running their roots in place.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/distribution/publish.hpp"

namespace chrootctl::distribution {

// What this file takes from the catalogue.
using catalogue::add;
using catalogue::AddOptions;
using catalogue::AddResult;
using catalogue::canonical_path;
using catalogue::check_name;
using catalogue::check_owned_dir;
using catalogue::check_trusted_dir;
using catalogue::invalid_name;

namespace {

constexpr const char* k_local_prefix = "from-";

// Copies the published build's small files into STORE/NAME/from-BUILD-ID (made under a dot name
// and renamed, so gc and readers never see half of it) and returns that directory.
Result<std::string> local_copy(const std::string& store, const Fragment& f, const std::string& published,
                               const std::map<std::string, std::string>& files, const std::string& root) {
  const std::string parent = str(store, "/", f.name);
  const std::string dest = str(parent, "/", k_local_prefix, f.build_id);
  const std::string source = root + "\n";
  TRY(sys::mkdir_path(parent, 0755, true));
  auto pfd = TRY(sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  auto write_all_files = [&](const std::string& dir) -> Status {
    for (const auto& [name, text] : files) TRY(write_file_atomic(str(dir, "/", name), text, 0644));
    return {};
  };
  if (sys::lstat_path(dest)) {
    // Registered from here before: refresh the small files (a build may have been re-signed),
    // but only for the same published root and tree.
    auto src = catalogue::read_trusted_file(dest + "/source");
    if (!src) return fail(src.error());
    if (!*src || **src != source) return fail(Errc::exists, str(quote(dest), " exists and does not hold the build published at ", quote(published)));
    auto existing = manifest::read_digest(dest + "/manifest");
    if (!existing) return fail(existing.error());
    if (*existing != f.digest) return fail(Errc::exists, str(quote(dest), " holds tree digest ", *existing, ", not ", f.digest));
    if (!files.count("signature")) (void)sys::unlink_at(pfd.get(), str(k_local_prefix, f.build_id, "/signature"));
    TRY(write_all_files(dest));
    return dest;
  }
  auto staging = TRY(TempDir::create(str(parent, "/.from-")));
  TRY(sys::chmod_dir(staging.path(), 0755));
  TRY(write_all_files(staging.path()));
  TRY(write_file_atomic(staging.path() + "/source", source, 0644));
  auto moved = sys::rename_at(AT_FDCWD, staging.path(), pfd.get(), str(k_local_prefix, f.build_id), RENAME_NOREPLACE);
  if (!moved) return fail(moved.error());
  (void)staging.release();
  TRY(sys::fsync(pfd.get()));
  return dest;
}

Result<AddResult> add_one(const Settings& s, const std::string& canon, const std::string& fragment_path, const std::string& stem,
                          const AddFromOptions& o) {
  const std::string text = TRY(catalogue::read_required_file(fragment_path, 1u << 20));
  const Fragment f = TRY(parse_fragment(text, fragment_path));
  if (f.name != stem) return fail(Errc::mismatch, str(fragment_path, " names ", quote(f.name), ", not ", quote(stem)));
  const std::string published = str(canon, "/", f.image);
  // The published build decides what runs, so it must be as protected as a build directory.
  TRY(check_trusted_dir(published, "published build directory"));
  std::map<std::string, std::string> files;
  for (const char* name : {"manifest", "lock", "recipe.toml"})
    files[name] = TRY(catalogue::read_required_file(str(published, "/", name), 512u << 20));
  if (auto sig = TRY(catalogue::read_trusted_file(published + "/signature", 64u << 10))) files["signature"] = std::move(*sig);
  const auto m = TRY(manifest::parse(files["manifest"], published + "/manifest"));
  if (manifest::digest(m) != f.digest)
    return fail(Errc::mismatch, str(published, "/manifest has tree digest ", manifest::digest(m), ", not the ", f.digest, " its fragment names"));
  // Judged again when it is recorded; here before the local copy is written.
  if (!o.allow_downgrade) TRY(catalogue::check_replacement(s, f.name, f.recipe, f.build_id, files["lock"]));
  TRY(with_context(sys::mkdir_p(s.store, 0755), str("creating the store ", s.store)));
  const std::string store = TRY(canonical_path(s.store));
  TRY(with_context(check_owned_dir(store, ::geteuid()), "refusing to register into the store"));
  // A sealed build is published as its image file, which jobs then run from (mounted).
  const std::string root = m.sealed ? str(published, "/", manifest::k_sealed_file) : published + "/root";
  if (o.status) o.status(str(f.name, ": verifying ", root));
  const std::string local = TRY(local_copy(store, f, published, files, root));
  AddOptions ao;
  ao.root = root;
  ao.build_id = f.build_id;
  ao.threads = o.threads;
  ao.progress = o.progress;
  ao.now = o.now;
  ao.refuse_downgrade = !o.allow_downgrade;
  ao.sealed_tree = o.sealed_tree;
  return add(s, f.name, local, ao);
}

}  // namespace

Result<std::vector<AddFromItem>> add_from(const Settings& s, const std::string& dir, const std::vector<std::string>& names, const AddFromOptions& o) {
  const std::string canon = TRY(canonical_path(dir));
  const std::string fragments = str(canon, "/catalogue.d");
  std::vector<std::string> stems;
  if (names.empty()) {
    auto fd = TRY(with_context(sys::open_dir(fragments), str(quote(canon), " holds no published images")));
    for (const auto& d : TRY(sys::read_dir(fd.get(), false)))
      if (!d.name.empty() && d.name[0] != '.' && d.name.ends_with(".toml")) stems.push_back(d.name.substr(0, d.name.size() - 5));
    std::sort(stems.begin(), stems.end());
  } else {
    for (const auto& n : names) {
      TRY(check_name(n));
      if (!sys::lstat_path(str(fragments, "/", n, ".toml")))
        return fail(Errc::not_found, str(quote(n), " is not published in ", canon, " (no ", fragments, "/", n, ".toml)"));
      stems.push_back(n);
    }
  }
  std::vector<AddFromItem> items;
  for (const auto& stem : stems) {
    AddFromItem item;
    item.name = stem;
    item.fragment = str(fragments, "/", stem, ".toml");
    if (auto why = invalid_name(stem)) {
      item.message = str("not registered: ", *why);
    } else if (auto r = add_one(s, canon, item.fragment, stem, o); r) {
      item.added = true;
      item.result = std::move(*r);
    } else {
      item.message = r.error().what();
    }
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace chrootctl::distribution
