// launcher::enter_root, which the Slurm plugin calls in each task: the layout of `chrootctl run`
// built in the calling process. Every enter_root runs in a forked child, which reports what it
// sees from inside; the host's mount table must be unchanged afterwards.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

#include "chrootctl/launcher/enter.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;
namespace ln = launcher;

class BatchEnter : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    root = path("root");
    for (const char* d : {"", "/etc", "/tmp", "/var", "/var/tmp", "/dev", "/proc", "/srv"}) test::mkdirs(root + d, 0755);
    test::write_file(root + "/etc/marker", "image\n");
    job_dir = path("jobdirs/42.0");
    test::mkdirs(job_dir, 0755);
    work = path("home/alice/run");
    test::mkdirs(work, 0755);
    ASSERT_EQ(::chown(work.c_str(), 65534, 65534), 0);
    mounts_before = fx::host_mounts_mentioning(m_dir);
  }
  void TearDown() override {
    if (!root.empty()) {
      EXPECT_EQ(fx::host_mounts_mentioning(m_dir), mounts_before) << "enter_root changed the host's mount table";
    }
    TempDirTest::TearDown();
  }

  ln::EnterOptions options() {
    ln::EnterOptions o;
    o.root = root;
    o.job_dir = job_dir;
    o.binds = {{work, work, false}};
    o.cwd = work;
    o.uid = 65534;
    o.gid = 65534;
    return o;
  }

  // Plans, prepares (as slurmstepd does once per step) and enters in a forked child, then runs
  // `inside` there; returns "error: ..." or what `inside` reported.
  std::string enter_and(const ln::EnterOptions& o, const std::function<std::string()>& inside, const std::function<void()>& before = {}) {
    auto plan = ln::plan_enter(o);
    if (!plan) return "error: " + plan.error().what();
    if (auto r = ln::prepare_enter(*plan); !r) return "error: " + r.error().what();
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(p[0]);
      if (before) before();
      auto r = ln::enter_root(*plan);
      const std::string report = r ? inside() : "error: " + r.error().what();
      (void)!::write(p[1], report.data(), report.size());
      ::_exit(0);
    }
    ::close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    return out;
  }

  std::string root, job_dir, work;
  std::vector<std::string> mounts_before;
};

std::string errno_of(int rc) { return rc == 0 ? "ok" : std::strerror(errno); }

TEST_F(BatchEnter, TheLayoutOfRunInTheCallingProcess) {
  const std::string seen = enter_and(options(), [&] {
    std::string r;
    r += "marker " + test::read_file("/etc/marker");
    r += "write /etc " + errno_of(::open("/etc/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644) < 0 ? -1 : 0) + "\n";
    struct statvfs sv {};
    ::statvfs("/", &sv);
    r += std::string("root") + ((sv.f_flag & ST_RDONLY) ? " ro" : "") + ((sv.f_flag & ST_NOSUID) ? " nosuid" : "") +
         ((sv.f_flag & ST_NODEV) ? " nodev" : "") + "\n";
    char cwd[4096] = {0};
    r += std::string("cwd ") + (::getcwd(cwd, sizeof cwd) ? cwd : "?") + "\n";
    for (const char* f : {"out", "/tmp/t", "/var/tmp/t", "/dev/shm/t"}) {
      const int fd = ::open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      r += std::string("write ") + f + " " + errno_of(fd < 0 ? -1 : (::write(fd, "x", 1) == 1 ? ::close(fd) : -1)) + "\n";
    }
    struct stat st {};
    ::stat("/dev/null", &st);
    r += "/dev/null " + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)) + "\n";
    char self[64] = {0};
    (void)!::readlink("/proc/self", self, sizeof self - 1);
    r += std::string("/proc/self is us ") + (std::string(self) == std::to_string(::getpid()) ? "yes" : self) + "\n";
    r += "host checkout " + errno_of(::access(test::source_dir().c_str(), F_OK)) + "\n";
    return r;
  });
  EXPECT_EQ(seen,
            "marker image\n"
            "write /etc Read-only file system\n"
            "root ro nosuid nodev\n"
            "cwd " +
                work +
                "\n"
                "write out ok\n"
                "write /tmp/t ok\n"
                "write /var/tmp/t ok\n"
                "write /dev/shm/t ok\n"
                "/dev/null 1:3\n"
                "/proc/self is us yes\n"
                "host checkout No such file or directory\n");
  // The working directory is the host's; the scratch directories are the job's, on the host,
  // made by prepare_enter: mode 0700, owned by the job user.
  EXPECT_EQ(test::read_file(work + "/out"), "x");
  for (const char* d : {"tmp", "var/tmp", "dev/shm"}) {
    EXPECT_EQ(test::read_file(job_dir + "/" + d + "/t"), "x") << d;
    struct stat st {};
    ASSERT_EQ(::lstat((job_dir + "/" + d).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u) << d;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << d;
  }
  EXPECT_FALSE(fx::exists(root + "/etc/new"));
}

// A scratch directory below the task's working directory, which is a host directory bound at
// its own path: its mount point would be made, as root, in the host's directory (a working
// directory of /etc gave the job user a directory of its own in the host's /etc).
TEST_F(BatchEnter, NoMountPointIsEverMadeInAHostDirectory) {
  const std::string host = path("hostetc");
  test::mkdirs(host + "/systemd/system", 0755);
  auto o = options();
  o.binds = {{host, host, false}};
  o.cwd = host;
  o.mount_under_scratch = {"/tmp", "/var/tmp", host + "/systemd/system/evil.d"};
  EXPECT_EQ(enter_and(o, [] { return std::string("entered"); }),
            "error: mount target " + host + "/systemd/system/evil.d is missing below " + host +
                ", where a host directory is bound, and chrootctl never makes a mount point in a host directory: make it there first or "
                "choose another target");
  EXPECT_NE(::access((host + "/systemd/system/evil.d").c_str(), F_OK), 0) << "a directory was made in the host directory";
  // One that exists there is mounted over, in the task's namespace only.
  test::mkdirs(host + "/systemd/system/evil.d", 0755);
  EXPECT_EQ(enter_and(o, [] { return std::string("entered"); }), "entered");
  EXPECT_EQ(test::sh("find '" + host + "' -mindepth 1 | sort").out,
            host + "/systemd\n" + host + "/systemd/system\n" + host + "/systemd/system/evil.d\n");
}

// The task's working directory is bound by its path, which its user can change: a symlink put
// in its place after the task started (to a directory the user cannot reach) is not followed
// by root to bind what it points at. The plugin gives the directory the task is in.
TEST_F(BatchEnter, TheWorkingDirectoryIsBoundOnlyIfItIsStillTheOneTheTaskIsIn) {
  const std::string secret = path("secret/inner");
  test::mkdirs(secret, 0755);
  ASSERT_EQ(::chmod(path("secret").c_str(), 0700), 0);
  test::write_file(secret + "/file", "secret\n");
  struct stat st {};
  ASSERT_EQ(::stat(work.c_str(), &st), 0);
  auto o = options();
  o.binds = {{work, work, false, ln::RootId{st.st_dev, st.st_ino}}};
  EXPECT_EQ(enter_and(o, [] { return std::string("entered"); }), "entered");
  ASSERT_EQ(::rename(work.c_str(), (work + ".was").c_str()), 0);
  ASSERT_EQ(::symlink(secret.c_str(), work.c_str()), 0);
  EXPECT_EQ(enter_and(o, [&] { return test::read_file(work + "/file"); }),
            "error: " + work + " is not the directory it was when the job was set up (replaced, or a symlink put in its place); refusing to bind it");
}

// slurmstepd enters with the submitter's umask: the nodes of /dev must not depend on it.
TEST_F(BatchEnter, TheDeviceNodesAreOpenToAllWhateverTheUmask) {
  for (const mode_t mask : {022, 077}) {
    const std::string seen = enter_and(
        options(),
        [] {
          std::string r;
          for (const char* n : {"null", "zero", "full", "random", "urandom", "tty"}) {
            struct stat st {};
            const std::string p = std::string("/dev/") + n;
            r += p + (::stat(p.c_str(), &st) == 0 ? " " + std::to_string(st.st_mode & 07777) : " missing") + "\n";
          }
          return r;
        },
        [mask] { ::umask(mask); });
    EXPECT_EQ(seen, "/dev/null 438\n/dev/zero 438\n/dev/full 438\n/dev/random 438\n/dev/urandom 438\n/dev/tty 438\n") << "umask " << mask;
  }
}

TEST_F(BatchEnter, TasksOfAStepShareTheirScratchDirectories) {
  auto o = options();
  EXPECT_EQ(enter_and(o, [] { return std::string(::open("/dev/shm/seg", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0 ? "made" : "failed"); }), "made");
  EXPECT_EQ(enter_and(o, [] { return std::string(::access("/dev/shm/seg", F_OK) == 0 ? "seen" : "missing"); }), "seen");
}

TEST_F(BatchEnter, ASymlinkInTheImageIsNeverFollowed) {
  ASSERT_EQ(::rmdir((root + "/tmp").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (root + "/tmp").c_str()), 0);
  EXPECT_EQ(enter_and(options(), [] { return std::string("entered"); }),
            "error: mount target /tmp in the image: /tmp is a symlink (to '/etc'); refusing to resolve a path through it");
  EXPECT_EQ(test::read_file(root + "/etc/marker"), "image\n");
}

TEST_F(BatchEnter, OnlyASingleThreadedProcessEnters) {
  std::thread* t = nullptr;
  const std::string r = enter_and(
      options(), [] { return std::string("entered"); },
      [&] {
        // In the child: a second thread, as a task of a threaded program would have.
        t = new std::thread([] { ::pause(); });
        t->detach();
      });
  EXPECT_EQ(r, "error: entering a job root must happen in a single-threaded process (a task just forked)");
}

TEST_F(BatchEnter, PrepareChecksTheRootAndTheScratchDirectories) {
  ASSERT_EQ(::chown(root.c_str(), 1000, 1000), 0);
  EXPECT_EQ(enter_and(options(), [] { return std::string("entered"); }), "error: the root " + root + " is owned by uid 1000, not by root");
  ASSERT_EQ(::chown(root.c_str(), 0, 0), 0);

  // A scratch directory someone else made is not the job's.
  test::mkdirs(job_dir + "/tmp", 0700);
  ASSERT_EQ(::chown((job_dir + "/tmp").c_str(), 1234, 1234), 0);
  EXPECT_EQ(enter_and(options(), [] { return std::string("entered"); }),
            "error: " + job_dir + "/tmp exists and belongs to uid 1234, not to the job user (uid 65534)");
  ASSERT_EQ(::rmdir((job_dir + "/tmp").c_str()), 0);

  // Nor is a symlink the job left where a scratch directory goes.
  test::mkdirs(job_dir + "/var", 0755);
  ASSERT_EQ(::chown((job_dir + "/var").c_str(), 65534, 65534), 0);
  ASSERT_EQ(::symlink("/etc", (job_dir + "/var/tmp").c_str()), 0);
  EXPECT_EQ(enter_and(options(), [] { return std::string("entered"); }),
            "error: '" + job_dir + "/var/tmp' is a symlink or not a directory; refusing to use it as scratch space");
}

TEST_F(BatchEnter, NeverTheHostsRoot) {
  auto o = options();
  o.root = "/";
  EXPECT_EQ(enter_and(o, [] { return std::string("entered"); }), "error: the root / is the host's own root; refusing to run on the host");
}

}  // namespace
}  // namespace chrootctl
