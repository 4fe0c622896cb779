/* The launcher tests' probe: one static program with a subcommand per check that busybox
 * cannot make, copied into the job roots the tests build (tests/privileged/launcher_fixture.hpp).
 * Static, so it runs in any root and in the VM stage's guest, which has no compiler.
 * Exit 0 means the check ran; what it found is printed on stdout. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes `text` to `path`; 0 or -1 with errno. */
static int write_file(const char* path, const char* text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int err = errno;
  close(fd);
  errno = err;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Every file called `name` below `dir` (the cgroup tree a job can see), written `value`:
 * one line per file, "RELATIVE-PATH: ok" or the error. */
static void write_everywhere(const char* dir, const char* rel, const char* name, const char* value) {
  char path[4096];
  snprintf(path, sizeof path, "%s%s/%s", dir, rel, name);
  if (access(path, F_OK) == 0) {
    int rc = write_file(path, value);
    printf("%s/%s: %s\n", *rel ? rel + 1 : ".", name, rc == 0 ? "ok" : strerror(errno));
  }
  snprintf(path, sizeof path, "%s%s", dir, rel);
  DIR* d = opendir(path);
  if (!d) return;
  struct dirent* e;
  while ((e = readdir(d))) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name);
    write_everywhere(dir, sub, name, value);
  }
  closedir(d);
}

/* The cgroup escape of a job run as root: a user namespace (and a cgroup namespace) of its
 * own, whose capabilities mount cgroupfs there, and every limit it can reach raised or lowered
 * as whatever host uid it is. Prints what each mount and write did. */
static int cgroup_escape(const char* base) {
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) != 0) {
    printf("unshare: %s\n", strerror(errno));
    return 0;
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("private: %s\n", strerror(errno));
    return 0;
  }
  static const struct {
    const char* type;
    const char* options;
    const char* file;
    const char* value;
  } k_tries[] = {
      {"cgroup2", NULL, "memory.max", "max"},
      {"cgroup2", NULL, "pids.max", "max"},
      {"cgroup", "memory", "memory.limit_in_bytes", "1099511627776"},
      {"cgroup", "pids", "pids.max", "max"},
  };
  for (unsigned i = 0; i < sizeof k_tries / sizeof k_tries[0]; ++i) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/cg%u", base, i);
    mkdir(dir, 0700);
    if (mount("none", dir, k_tries[i].type, 0, k_tries[i].options) != 0) {
      printf("mount %s%s%s: %s\n", k_tries[i].type, k_tries[i].options ? " " : "", k_tries[i].options ? k_tries[i].options : "", strerror(errno));
      continue;
    }
    printf("mount %s%s%s: ok\n", k_tries[i].type, k_tries[i].options ? " " : "", k_tries[i].options ? k_tries[i].options : "");
    write_everywhere(dir, "", k_tries[i].file, k_tries[i].value);
    umount(dir);
  }
  return 0;
}

/* add_key, keyctl and request_key without libkeyutils. */
#define KEY_SPEC_USER_KEYRING (-4)
#define KEYCTL_GET_PERSISTENT 22
#define KEYCTL_SEARCH 10
#define KEYCTL_INVALIDATE 21
static long user_or_persistent(const char* which) {
  if (!strcmp(which, "user")) return KEY_SPEC_USER_KEYRING;
  return syscall(SYS_keyctl, KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_USER_KEYRING);
}

static int result(int rc) {
  if (rc == 0) {
    puts("ok");
    return 0;
  }
  printf("%s\n", strerror(errno));
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* c = argv[1];
  if (!strcmp(c, "ids")) {
    printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid());
    return 0;
  }
  if (!strcmp(c, "tiocsti")) {
    char ch = 'X';
    return result(ioctl(0, TIOCSTI, &ch));
  }
  if (!strcmp(c, "open")) {
    int fd = open(argv[2], O_RDONLY);
    return result(fd < 0 ? -1 : 0);
  }
  if (!strcmp(c, "openw")) {
    int fd = open(argv[2], O_WRONLY | O_CREAT, 0644);
    return result(fd < 0 ? -1 : 0);
  }
  if (!strcmp(c, "chroot")) return result(chroot("/tmp"));
  if (!strcmp(c, "pivot_root")) return result((int)syscall(SYS_pivot_root, "/tmp", "/tmp"));
  if (!strcmp(c, "unshare")) return result(unshare(CLONE_NEWNS));
  if (!strcmp(c, "remount")) return result(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
  if (!strcmp(c, "fds")) {
    DIR* d = opendir("/proc/self/fd");
    struct dirent* e;
    while ((e = readdir(d))) {
      int fd = atoi(e->d_name);
      if (e->d_name[0] == '.' || fd == dirfd(d)) continue;
      char buf[4096] = {0};
      snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
      char target[4096] = {0};
      if (readlink(buf, target, sizeof target - 1) < 0) target[0] = 0;
      printf("%d %s\n", fd, target);
    }
    return 0;
  }
  if (!strcmp(c, "alloc")) {
    long mb = atol(argv[2]);
    for (long i = 0; i < mb; ++i) {
      char* p = malloc(1 << 20);
      if (!p) {
        puts("malloc failed");
        return 3;
      }
      memset(p, 1, 1 << 20);
    }
    puts("allocated");
    return 0;
  }
  if (!strcmp(c, "forks")) {
    int n = atoi(argv[2]), made = 0;
    for (int i = 0; i < n; ++i) {
      pid_t p = fork();
      if (p == 0) {
        pause();
        _exit(0);
      }
      if (p < 0) break;
      ++made;
    }
    printf("forked %d\n", made);
    fflush(stdout);
    return 0;
  }
  if (!strcmp(c, "daemon")) {
    if (fork() == 0) {
      setsid();
      if (fork() == 0) {
        execl("/bin/sleep", "sleep", argv[2], (char*)0);
        _exit(1);
      }
      _exit(0);
    }
    wait(NULL);
    puts("daemonized");
    return 0;
  }
  if (!strcmp(c, "status")) {  // selected lines of /proc/self/status
    FILE* f = fopen("/proc/self/status", "r");
    char line[512];
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) || !strncmp(line, "Uid", 3) || !strncmp(line, "Gid", 3)) fputs(line, stdout);
    return 0;
  }
  if (!strcmp(c, "cgroup-escape")) return cgroup_escape(argv[2]);
  if (!strcmp(c, "write")) return result(write_file(argv[2], argv[3]));
  if (!strcmp(c, "key-add")) { /* key-add user|persistent DESCRIPTION */
    long ring = user_or_persistent(argv[2]);
    if (ring == -1) {
      printf("%s\n", strerror(errno));
      return 0;
    }
    return result(syscall(SYS_add_key, "user", argv[3], "secret", 6, ring) < 0 ? -1 : 0);
  }
  if (!strcmp(c, "key-find")) { /* key-find user|persistent DESCRIPTION */
    long ring = user_or_persistent(argv[2]);
    if (ring == -1) {
      printf("%s\n", strerror(errno));
      return 0;
    }
    return result(syscall(SYS_keyctl, KEYCTL_SEARCH, ring, "user", argv[3], 0) < 0 ? -1 : 0);
  }
  if (!strcmp(c, "key-del")) { /* key-del user|persistent DESCRIPTION: the key found, invalidated */
    long ring = user_or_persistent(argv[2]);
    long key = ring == -1 ? -1 : syscall(SYS_keyctl, KEYCTL_SEARCH, ring, "user", argv[3], 0);
    return result(key < 0 ? -1 : syscall(SYS_keyctl, KEYCTL_INVALIDATE, key) < 0 ? -1 : 0);
  }
  return 2;
}
