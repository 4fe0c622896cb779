// run_build_command: the builder's [packages] and [run] steps, through the same executor as a
// job, with a writable tree and root's capabilities.
#include <unistd.h>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/build_command.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher {

Result<int> run_build_command(const BuildCommand& cmd) {
  if (cmd.root.empty() || cmd.root[0] != '/')
    return fail(Errc::invalid_argument, str("build command: the tree ", quote(cmd.root), " must be an absolute path"));
  if (cmd.argv.empty() || cmd.argv.front().empty()) return fail(Errc::invalid_argument, "build command: no command given");
  if (::geteuid() != 0) return fail(Errc::permission, "build commands run as root (they install packages in the tree)");
  LaunchPlan p;
  p.mode = LaunchMode::build;
  p.new_net = !cmd.network;
  p.root = cmd.root;
  p.root_read_only = false;
  p.drop_privileges = false;
  p.use_cgroup = false;
  p.creds.uid = 0;
  p.creds.gid = 0;
  p.creds.name = "root";
  p.creds.home = "/root";
  p.argv = cmd.argv;
  for (const auto& [k, v] : cmd.env) {
    if (k.empty() || k.find('=') != std::string::npos)
      return fail(Errc::invalid_argument, str("build command: invalid environment variable name ", quote(k)));
    p.env.push_back(k + "=" + v);
  }
  p.cwd = "/";
  p.stdin_fd = -1;
  p.stdout_fd = cmd.stdout_fd;
  p.stderr_fd = cmd.stderr_fd;
  p.seccomp = cmd.seccomp;
  if (!p.seccomp.program.empty() && (!is_sha256_hex(p.seccomp.digest) || p.seccomp.program[0] != '/'))
    return fail(Errc::invalid_argument, str("build command: system-call filter ", quote(p.seccomp.program), " of policy ", quote(p.seccomp.policy),
                                            " is not an absolute path with a digest"));
  p.mounts.push_back({MountOp::Kind::proc, "/proc", 0, false, false});
  p.mounts.push_back({MountOp::Kind::dev, "/dev", 0, false, false});
  for (const auto& [host, inner] : cmd.binds) {
    auto t = normalize_inner_path(inner, "build command bind target");
    if (!t) return fail(std::move(t.error()));
    if (host.empty() || host[0] != '/')
      return fail(Errc::invalid_argument, str("build command bind source ", quote(host), " must be an absolute path"));
    if (*t == "/" || *t == "/proc" || *t == "/dev" || starts_with(*t, "/proc/") || starts_with(*t, "/dev/"))
      return fail(Errc::invalid_argument, str("build command bind target ", *t, " is inside /proc or /dev, or is '/'"));
    p.sources.push_back({host, false, {}});
    p.mounts.push_back({MountOp::Kind::bind, *t, p.sources.size() - 1, true, false});
  }
  const Outcome o = execute(p);
  switch (o.kind) {
    case Outcome::Kind::exited:
    case Outcome::Kind::signaled:
      return o.exit_status();
    case Outcome::Kind::not_found:
      return fail(Errc::not_found, str("build command in ", cmd.root, ": ", o.error));
    case Outcome::Kind::not_executable:
      return fail(Errc::permission, str("build command in ", cmd.root, ": ", o.error));
    case Outcome::Kind::setup_failed:
      break;
  }
  return fail(Errc::io, str("build command in ", cmd.root, ": ", o.error));
}

}  // namespace chrootctl::launcher
