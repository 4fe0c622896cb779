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

static int result(int rc) { if (rc == 0) { puts("ok"); return 0; } printf("%s\n", strerror(errno)); return 0; }

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* c = argv[1];
  if (!strcmp(c, "ids")) { printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid()); return 0; }
  if (!strcmp(c, "tiocsti")) { char ch = 'X'; return result(ioctl(0, TIOCSTI, &ch)); }
  if (!strcmp(c, "open")) { int fd = open(argv[2], O_RDONLY); return result(fd < 0 ? -1 : 0); }
  if (!strcmp(c, "openw")) { int fd = open(argv[2], O_WRONLY | O_CREAT, 0644); return result(fd < 0 ? -1 : 0); }
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
    for (long i = 0; i < mb; ++i) { char* p = malloc(1 << 20); if (!p) { puts("malloc failed"); return 3; } memset(p, 1, 1 << 20); }
    puts("allocated");
    return 0;
  }
  if (!strcmp(c, "forks")) {
    int n = atoi(argv[2]), made = 0;
    for (int i = 0; i < n; ++i) { pid_t p = fork(); if (p == 0) { pause(); _exit(0); } if (p < 0) break; ++made; }
    printf("forked %d\n", made);
    fflush(stdout);
    return 0;
  }
  if (!strcmp(c, "daemon")) {
    if (fork() == 0) { setsid(); if (fork() == 0) { execl("/bin/sleep", "sleep", argv[2], (char*)0); _exit(1); } _exit(0); }
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
  return 2;
}
