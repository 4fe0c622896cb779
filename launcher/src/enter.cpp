// Entering a job root in the calling process (the Slurm plugin's task hook): the host-side
// checks of the executor (sources.cpp), a new mount namespace, and the new root of mounts.cpp.
#include "chrootctl/launcher/enter.hpp"

#include <sched.h>
#include <unistd.h>

#include <cerrno>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "internal.hpp"
#include "kernel.hpp"

namespace chrootctl::launcher {

namespace {

Status check_plan(const LaunchPlan& plan) {
  // Only the closed set of plans plan_enter makes: a read-only image, no user namespace.
  if (plan.mode != LaunchMode::job || plan.user_namespace || !plan.root_read_only)
    return fail(Errc::internal, "enter_root: the plan was not made by plan_enter");
  if (::geteuid() != 0) return fail(Errc::permission, "entering a job root needs root (euid 0)");
  return {};
}

// The root and every source, opened and checked on the host, as the executor does, with the
// scratch directories made for the job user.
Result<detail::OpenedSources> open_on_host(const LaunchPlan& plan) {
  auto opened = TRY(detail::open_sources(plan));
  TRY(detail::make_scratch_dirs(plan, opened, plan.creds.uid, plan.creds.gid));
  return opened;
}

}  // namespace

Status prepare_enter(const LaunchPlan& plan) {
  TRY(check_plan(plan));
  TRY(open_on_host(plan));
  return {};
}

Status enter_root(const LaunchPlan& plan) {
  TRY(check_plan(plan));
  // unshare(CLONE_NEWNS) unshares the filesystem context too, which the kernel refuses to a
  // thread that shares it with others; say so plainly.
  if (TRY(kernel::thread_count()) != 1)
    return fail(Errc::internal, "entering a job root must happen in a single-threaded process (a task just forked)");
  // 1. The root and every source, opened and checked on the host, as the executor does.
  auto opened = TRY(open_on_host(plan));
  detail::ChildHandles h;
  h.image = opened.image.get();
  for (const auto& s : opened.sources) h.sources.push_back(s.get());
  // 2. A mount namespace of our own, whose "/" is a slave: nothing done from here on
  //    propagates to the host.
  TRY(kernel::unshare(CLONE_NEWNS, "CLONE_NEWNS"));
  TRY(detail::isolate_mounts());
  // 3. The same new root as `chrootctl run`, then pivot_root into it.
  auto sources = TRY(detail::reopen_sources(plan, h));
  TRY(detail::build_new_root(plan, sources));
  if (auto r = sys::chdir(plan.cwd); !r) return fail_errno(str("chdir(", quote(plan.cwd), ") in the new root"), r.error().sys_errno());
  return {};
}

}  // namespace chrootctl::launcher
