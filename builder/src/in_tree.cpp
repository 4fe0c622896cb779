// [packages] and [run]: commands that change the tree with its own tools. apt and [run]
// commands execute inside the tree through the launcher's run_build_command (private mount,
// PID, IPC and UTS namespaces, fresh /proc, minimal /dev); dnf works from the host with
// --installroot, contained like the base tools.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "build_internal.hpp"
#include "chrootctl/builder/sources.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "in_tree_internal.hpp"
#include "process.hpp"

namespace chrootctl::builder::detail {

namespace {

bool in_tree_exists(const std::string& root, const std::string& rel) {
  auto rootfd = sys::open_path(root, O_RDONLY | O_DIRECTORY);
  if (!rootfd) return false;
  return static_cast<bool>(sys::open_in_root(rootfd->get(), rel, O_PATH));
}

Packages::Manager pick_manager(const BuildContext& c) {
  if (c.recipe.packages.manager != Packages::Manager::automatic) return c.recipe.packages.manager;
  if (std::holds_alternative<DnfBase>(c.recipe.base)) return Packages::Manager::dnf;
  if (in_tree_exists(c.root, "usr/bin/apt-get")) return Packages::Manager::apt;
  if (in_tree_exists(c.root, "var/lib/rpm")) return Packages::Manager::dnf;
  return Packages::Manager::automatic;
}

Status in_tree(const BuildContext& c, const std::string& what, std::vector<std::string> argv, bool network) {
  c.log("# in the tree, under the build system-call policy: " + render_argv(argv));
  auto rc = TRY(run_in_tree(c.root, std::move(argv), base_env(c.sde.value_or(0)), network, c.log_fd));
  if (rc != 0) return fail(Errc::io, str(what, " failed inside the tree (exit status ", rc, "); see the output above in build.log"));
  return {};
}

Status dnf_packages(BuildContext& c, const std::string& verb, const std::vector<std::string>& pkgs) {
  if (const auto* d = std::get_if<DnfBase>(&c.recipe.base)) return run_dnf(c, *d, d->reposdir, verb, pkgs);
  // Not a dnf base (an EL image, say): the tree's own repositories and release.
  DnfBase b;
  b.releasever.clear();
  return run_dnf(c, b, c.root + "/etc/yum.repos.d", verb, pkgs);
}

}  // namespace

Status run_packages(BuildContext& c) {
  const auto& p = c.recipe.packages;
  if (p.install.empty() && p.remove.empty()) return {};
  const auto manager = pick_manager(c);
  if (manager == Packages::Manager::dnf) {
    if (!p.install.empty()) {
      c.step("packages: dnf install " + join(p.install, " "));
      TRY(dnf_packages(c, "install", p.install));
    }
    if (!p.remove.empty()) {
      c.step("packages: dnf remove " + join(p.remove, " "));
      TRY(dnf_packages(c, "remove", p.remove));
    }
    return {};
  }
  if (manager != Packages::Manager::apt)
    return fail(Errc::unsupported, str(c.recipe.display_name, ": [packages] needs apt or dnf in the tree; set packages.manager"));
  if (!p.install.empty()) {
    c.step("packages: apt-get install " + join(p.install, " "));
    TRY(in_tree(c, "apt-get update", {"apt-get", "update"}, true));
    std::vector<std::string> argv = {"apt-get", "install", "-y", "--no-install-recommends", "--"};
    argv.insert(argv.end(), p.install.begin(), p.install.end());
    TRY(in_tree(c, "apt-get install", argv, true));
  }
  if (!p.remove.empty()) {
    c.step("packages: apt-get purge " + join(p.remove, " "));
    std::vector<std::string> argv = {"apt-get", "purge", "-y", "--allow-remove-essential", "--"};
    argv.insert(argv.end(), p.remove.begin(), p.remove.end());
    TRY(in_tree(c, "apt-get purge", argv, false));
  }
  // The package lists and downloaded .debs are not part of a job root.
  TRY(in_tree(c, "apt-get clean", {"apt-get", "clean"}, false));
  TRY(in_tree(c, "removing apt lists", {"/bin/sh", "-c", "rm -rf /var/lib/apt/lists/*"}, false));
  return {};
}

Status run_commands(BuildContext& c) {
  const auto& r = c.recipe.run;
  for (std::size_t i = 0; i < r.commands.size(); ++i) {
    c.step(str("run ", i + 1, "/", r.commands.size(), ": ", r.commands[i]));
    TRY(in_tree(c, str("[run] command ", i + 1, " ", quote(r.commands[i])), {"/bin/sh", "-c", r.commands[i]}, r.network));
  }
  return {};
}

}  // namespace chrootctl::builder::detail
