/* The parts of the system-call filter's cost, for bench/seccomp.sh:
 *   seccomp_cost getppid N [allow-all]  N raw getppid calls; prints ns per call. With allow-all,
 *                                       first installs a one-instruction filter that allows
 *                                       everything: the cost of having any filter at all.
 *   seccomp_cost install FILE N         installs the program of a chrootctl program file
 *                                       (header, then instructions) in N fresh children and
 *                                       prints the mean time of the seccomp() call in us. */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int install(struct sock_fprog* p) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p);
}

int main(int argc, char** argv) {
  if (argc >= 3 && !strcmp(argv[1], "getppid")) {
    const long n = atol(argv[2]);
    if (argc > 3 && !strcmp(argv[3], "allow-all")) {
      struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
      struct sock_fprog p = {1, &allow};
      if (install(&p) != 0) return perror("seccomp"), 1;
    }
    const double a = now_ns();
    for (long i = 0; i < n; ++i) syscall(SYS_getppid);
    printf("%.2f\n", (now_ns() - a) / (double)n);
    return 0;
  }
  if (argc >= 4 && !strcmp(argv[1], "install")) {
    static char buf[56 + 4096 * 8];
    FILE* f = fopen(argv[2], "rb");
    if (!f) return perror(argv[2]), 1;
    const size_t size = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (size <= 56 || (size - 56) % 8) return fprintf(stderr, "%s: not a program file\n", argv[2]), 1;
    struct sock_fprog p = {(unsigned short)((size - 56) / 8), (struct sock_filter*)(buf + 56)};
    const int n = atoi(argv[3]);
    double total = 0;
    for (int i = 0; i < n; ++i) {
      int fds[2];
      if (pipe(fds) != 0) return 1;
      const pid_t pid = fork();
      if (pid == 0) {
        const double a = now_ns();
        const int rc = install(&p);
        const double us = rc == 0 ? (now_ns() - a) / 1e3 : -1;
        (void)!write(fds[1], &us, sizeof us);
        _exit(rc == 0 ? 0 : 1);
      }
      double us = -1;
      (void)!read(fds[0], &us, sizeof us);
      waitpid(pid, NULL, 0);
      close(fds[0]);
      close(fds[1]);
      if (us < 0) return fprintf(stderr, "seccomp() failed\n"), 1;
      total += us;
    }
    printf("%.1f\n", total / n);
    return 0;
  }
  fprintf(stderr, "usage: seccomp_cost getppid N [allow-all] | install FILE N\n");
  return 2;
}
