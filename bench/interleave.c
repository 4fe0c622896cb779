/* interleave ROUNDS CMD... ::: CMD... [::: CMD...]
 * Runs the commands in turn, ROUNDS times (after 10 warm-up rounds), each by fork/exec/wait
 * with stdout to /dev/null, and prints one line per command: "median_ms mean_ms". Taking the
 * commands in turn puts the machine's drift on all of them alike, which one block of runs per
 * command (hyperfine) does not. Exits 1 if a command fails. Used by bench/launch.sh. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static int run(char** argv, int devnull) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(devnull, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: interleave ROUNDS CMD... ::: CMD...\n");
    return 2;
  }
  const int rounds = atoi(argv[1]);
  char** cmds[16];
  int n = 0;
  cmds[n++] = argv + 2;
  for (int i = 2; i < argc && n < 16; i++)
    if (strcmp(argv[i], ":::") == 0) {
      argv[i] = NULL;
      cmds[n++] = argv + i + 1;
    }
  const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  double* t = calloc((size_t)rounds * (size_t)n, sizeof *t);
  if (rounds < 1 || devnull < 0 || !t) return 2;
  for (int round = -10; round < rounds; round++)
    for (int c = 0; c < n; c++) {
      const double start = now_ms();
      if (run(cmds[c], devnull) != 0) {
        fprintf(stderr, "interleave: %s failed\n", cmds[c][0]);
        return 1;
      }
      if (round >= 0) t[c * rounds + round] = now_ms() - start;
    }
  for (int c = 0; c < n; c++) {
    double sum = 0;
    for (int i = 0; i < rounds; i++) sum += t[c * rounds + i];
    qsort(t + c * rounds, (size_t)rounds, sizeof *t, by_value);
    printf("%.3f %.3f\n", t[c * rounds + rounds / 2], sum / rounds);
  }
  return 0;
}
