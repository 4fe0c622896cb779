// plan_enter: the layout the Slurm plugin enters, as plain data, with plan_launch's checks.
#include <gtest/gtest.h>

#include "chrootctl/launcher/enter.hpp"

namespace chrootctl::launcher {
namespace {

std::string show(const LaunchPlan& p) {
  std::string out;
  for (const auto& m : p.mounts) {
    out += m.target + " ";
    switch (m.kind) {
      case MountOp::Kind::proc:
        out += "proc";
        break;
      case MountOp::Kind::dev:
        out += "dev";
        break;
      case MountOp::Kind::bind: {
        const auto& s = p.sources.at(m.source);
        out += "<- " + s.path + (s.scratch_subdir.empty() ? "" : "/" + s.scratch_subdir);
        if (m.read_only) out += " ro";
        if (m.recursive) out += " rec";
        break;
      }
    }
    out += "\n";
  }
  return out;
}

EnterOptions slurm_task() {
  EnterOptions o;
  o.root = "/var/lib/chrootctl/el9/b1/root";
  o.root_id = RootId{64768, 1234};
  o.job_dir = "/var/spool/chrootctl/slurm/42.0";
  o.binds = {{"/cvmfs", "/cvmfs", true}, {"/home/alice/run", "/home/alice/run", false}};
  o.cwd = "/home/alice/run";
  o.uid = 1000;
  o.gid = 100;
  return o;
}

TEST(BatchPlanEnter, TheLayoutOfRunInTheCallersProcess) {
  auto p = plan_enter(slurm_task());
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(show(*p),
            "/proc proc\n"
            "/dev dev\n"
            "/tmp <- /var/spool/chrootctl/slurm/42.0/tmp\n"
            "/cvmfs <- /cvmfs ro rec\n"
            "/var/tmp <- /var/spool/chrootctl/slurm/42.0/var/tmp\n"
            "/dev/shm <- /var/spool/chrootctl/slurm/42.0/dev/shm\n"
            "/home/alice/run <- /home/alice/run rec\n");
  EXPECT_EQ(p->mode, LaunchMode::job);
  EXPECT_TRUE(p->root_read_only);
  EXPECT_FALSE(p->user_namespace);
  EXPECT_FALSE(p->use_cgroup);
  EXPECT_FALSE(p->drop_privileges);  // slurmstepd does it, right after
  EXPECT_EQ(p->root, "/var/lib/chrootctl/el9/b1/root");
  EXPECT_EQ(p->root_id, (RootId{64768, 1234}));
  EXPECT_EQ(p->cwd, "/home/alice/run");
  EXPECT_EQ(p->creds.uid, 1000u);
  EXPECT_EQ(p->creds.gid, 100u);
}

TEST(BatchPlanEnter, ScratchDirectoriesOfTheJob) {
  auto o = slurm_task();
  o.mount_under_scratch = {"/scratch//x/", "/tmp"};
  o.binds.clear();
  o.cwd.clear();
  auto p = plan_enter(o);
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(show(*p),
            "/proc proc\n"
            "/dev dev\n"
            "/tmp <- /var/spool/chrootctl/slurm/42.0/tmp\n"
            "/scratch/x <- /var/spool/chrootctl/slurm/42.0/scratch/x\n"
            "/dev/shm <- /var/spool/chrootctl/slurm/42.0/dev/shm\n");
  EXPECT_EQ(p->cwd, "/");
}

TEST(BatchPlanEnter, WorkingDirectoriesThatCannotBeBound) {
  auto o = slurm_task();
  o.binds = {{"/tmp", "/tmp", false}};
  EXPECT_EQ(plan_enter(o).error().message(), "--bind target /tmp is mounted twice");
  o.binds = {{"/", "/", false}};
  EXPECT_EQ(plan_enter(o).error().message(), "--bind target must not be '/'");
  o.binds = {{"/dev/shm", "/dev/shm", false}};
  EXPECT_EQ(plan_enter(o).error().message(), "--bind target /dev/shm is inside /proc or /dev, which chrootctl provides");
  o.binds = {{"run", "/run", false}};
  EXPECT_EQ(plan_enter(o).error().message(), "bind source 'run' must be an absolute path");
}

TEST(BatchPlanEnter, EveryErrorAtOnce) {
  EnterOptions o;
  o.root = "relative/root";
  o.job_dir = "/";
  o.mount_under_scratch = {"/proc/x", "/a/../b"};
  o.cwd = "here";
  EXPECT_EQ(plan_enter(o).error().message(),
            "the root 'relative/root' must be an absolute path; "
            "the job directory must not be '/'; "
            "scratch directory /proc/x is inside /proc or /dev, which chrootctl provides; "
            "scratch directory '/a/../b' must not contain '..'; "
            "the working directory 'here' must be an absolute path");
}

}  // namespace
}  // namespace chrootctl::launcher
