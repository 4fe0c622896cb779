// The builder's one way into a tree being built: the launcher's run_build_command.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/build_command.hpp"
#include "chrootctl/seccomp/compile.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "in_tree_internal.hpp"

namespace chrootctl::builder::detail {

Result<launcher::SeccompPlan> build_filter(const std::string& policy) {
  // The build policies are used as they are written: no site additions (those are for jobs).
  auto source = TRY(seccomp::load_source(policy, Settings{}));
  if (!source) return fail(Errc::internal, str("build policy ", quote(policy), " is none"));
  const std::string dir = seccomp::cache_dir();
  if (dir.empty()) return fail(Errc::permission, "build commands run as root, whose state directory holds the compiled system-call policy");
  auto cached = TRY(with_context(seccomp::compile_to_cache(*source, dir), str("compiling the ", policy, " system-call policy")));
  return launcher::SeccompPlan{policy, cached.digest, cached.path};
}

Result<int> run_in_tree(const std::string& root, std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env, bool network,
                        int log_fd) {
  launcher::BuildCommand cmd;
  cmd.root = root;
  cmd.argv = std::move(argv);
  cmd.env = std::move(env);
  cmd.network = network;
  cmd.stdout_fd = log_fd;
  cmd.stderr_fd = log_fd;
  // The build policy: the command (and everything it starts) runs under its filter.
  cmd.seccomp = TRY(build_filter("build"));
  // Name resolution for package downloads. The launcher creates a missing target as an empty
  // file to mount on; such a placeholder is removed again so it does not end up in the image.
  bool placeholder = false;
  auto rootfd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY));
  if (network) {
    cmd.binds.emplace_back("/etc/resolv.conf", "/etc/resolv.conf");
    auto etc = sys::open_in_root(rootfd.get(), "etc", O_RDONLY | O_DIRECTORY, true);
    placeholder = etc && !sys::lstat_at(etc->get(), "resolv.conf");
  }
  auto rc = launcher::run_build_command(cmd);
  if (placeholder) {
    auto etc = sys::open_in_root(rootfd.get(), "etc", O_RDONLY | O_DIRECTORY, true);
    if (etc) {
      auto st = sys::lstat_at(etc->get(), "resolv.conf");
      if (st && S_ISREG(st->st_mode) && st->st_size == 0) TRY(sys::unlink_at(etc->get(), "resolv.conf"));
    }
  }
  return rc;
}

}  // namespace chrootctl::builder::detail
