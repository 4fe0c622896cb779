// The store's reachability rule: root-only trees, or trees with nothing privileged in them.
#include "chrootctl/catalogue/access.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::catalogue {

namespace {

bool root_only(const struct stat& st) { return S_ISDIR(st.st_mode) && st.st_uid == 0 && (st.st_mode & (S_IXGRP | S_IXOTH)) == 0; }

// Sets the mode of the build directory `image` (root-owned, not a symlink) to `mode`.
Status set_image_mode(const std::string& image, mode_t mode) {
  auto fd = TRY(sys::open_path(image, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  auto st = TRY(sys::fstat(fd.get()));
  if (st.st_uid != 0) return fail(Errc::permission, str(quote(image), " is owned by uid ", st.st_uid, ", not root"));
  if ((st.st_mode & 07777) == mode) return {};
  if (::fchmod(fd.get(), mode) != 0) return fail_errno(str("fchmod(", quote(image), ", ", mode_octal(mode), ")"), errno);
  return {};
}

std::string config_label(const Settings& s) { return s.config_file.empty() ? std::string("the configuration") : s.config_file; }

}  // namespace

Result<std::optional<std::string>> root_only_dir(const std::string& path) {
  if (path.empty() || path[0] != '/') return fail(Errc::invalid_argument, str(quote(path), " is not an absolute path"));
  // "/", "/a", "/a/b" for "/a/b".
  std::vector<std::string> chain{"/"};
  for (std::size_t i = 1; i <= path.size(); ++i)
    if ((i == path.size() || path[i] == '/') && i > 1) chain.push_back(path.substr(0, i));
  for (const auto& dir : chain) {
    auto st = sys::lstat_path(dir);
    if (!st) {
      // Not even we can look: the directory above keeps us, and so every other user, out.
      if (st.error().sys_errno() == EACCES) return std::optional<std::string>(parent_dir(dir));
      return fail(std::move(st.error()));
    }
    if (root_only(*st)) return std::optional<std::string>(dir);
  }
  return std::optional<std::string>();
}

std::vector<std::string> privileged_entries(const manifest::Manifest& m) {
  std::vector<std::string> out;
  for (const auto& e : m.entries)
    if (auto what = manifest::privilege_of(e)) out.push_back(str(quote(escape_bytes(e.path)), " (", *what, ")"));
  return out;
}

std::string list_privileged(const std::vector<std::string>& entries, std::size_t max) {
  std::string out = str(entries.size(), entries.size() == 1 ? " entry: " : " entries: ");
  for (std::size_t i = 0; i < entries.size() && i < max; ++i) out += str(i ? ", " : "", entries[i]);
  if (entries.size() > max) out += ", ...";
  return out;
}

Result<Exposure> exposure(const std::string& root, const manifest::Manifest& m) {
  Exposure x;
  x.root_only_by = TRY(root_only_dir(root));
  // A sealed image's entries exist only inside its mount, which is nosuid and nodev, and no
  // hard link reaches into it: nothing of it gives privileges on the host.
  if (!m.sealed) x.privileged = privileged_entries(m);
  return x;
}

bool in_store(const std::string& store, const std::string& image, const std::string& root) {
  if (root != image + "/root" && root != str(image, "/", manifest::k_sealed_file)) return false;
  const std::string recipe_dir = parent_dir(image);
  return recipe_dir != "/" && parent_dir(recipe_dir) == store;
}

Result<std::vector<std::string>> settle_access(const Settings& s, const std::string& name, const std::string& image, const std::string& root,
                                               const manifest::Manifest& m) {
  std::vector<std::string> notes;
  const std::string store = TRY(canonical_path(s.store));
  const bool ours = in_store(store, image, root);
  auto x = TRY(exposure(root, m));
  if (s.readable(name)) {
    if (!x.privileged.empty())
      return fail(Errc::permission, str(quote(name), " is in readable_images in ", config_label(s),
                                        ": unprivileged launchers read its tree, so it must hold no setuid, setgid or capability file and no device "
                                        "node, but it holds ",
                                        list_privileged(x.privileged), " (strip them: [strip] in the recipe, or import --strip)"));
    if (ours) {
      TRY(set_image_mode(image, 0755));
      x.root_only_by = TRY(root_only_dir(root));
    }
    if (x.root_only_by)
      notes.push_back(str(quote(name), " is in readable_images, but ", quote(*x.root_only_by),
                          " keeps users other than root out, so unprivileged launchers cannot use it"));
    return notes;
  }
  if (!x.breaks_rule()) return notes;
  if (!ours)
    return fail(Errc::permission, str("every user of this host can reach ", quote(root), " and it holds ", list_privileged(x.privileged),
                                      ", which would run with their privileges outside any job; make a directory above it "
                                      "reachable by root only (chmod 0700), or remove them"));
  TRY(set_image_mode(image, 0700));
  notes.push_back(str(quote(image), " was made reachable by root only (0700): its tree holds ", list_privileged(x.privileged)));
  return notes;
}

Result<AccessRepair> repair_access(const Settings& s, const std::vector<std::string>& names, const std::string& image, const std::string& root,
                                   const manifest::Manifest& m) {
  AccessRepair out;
  const std::string store = TRY(canonical_path(s.store));
  const bool ours = in_store(store, image, root);
  auto x = TRY(exposure(root, m));
  std::string readable_name;
  for (const auto& n : names)
    if (readable_name.empty() && s.readable(n)) readable_name = n;
  if (x.breaks_rule()) {
    if (!ours) {
      out.problem = str("every user of this host can reach ", quote(root), " and it holds ", list_privileged(x.privileged),
                        "; make a directory above it reachable by root only (chmod 0700), or remove them");
      return out;
    }
    TRY(set_image_mode(image, 0700));
    out.notes.push_back(str("host users could reach ", quote(root), ", which holds ", list_privileged(x.privileged), "; ", quote(image),
                            " was made reachable by root only (0700)",
                            readable_name.empty() ? std::string()
                                                  : str(", so unprivileged launchers cannot use ", quote(readable_name),
                                                        " (it is in readable_images) until it holds nothing privileged")));
    return out;
  }
  if (!readable_name.empty() && ours && x.privileged.empty() && x.root_only_by == image) {
    TRY(set_image_mode(image, 0755));
    out.notes.push_back(str(quote(image), " was opened (0755) for unprivileged launchers: ", quote(readable_name), " is in readable_images"));
  }
  return out;
}

}  // namespace chrootctl::catalogue
