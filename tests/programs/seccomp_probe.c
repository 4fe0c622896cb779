/* The seccomp tests' probe: tries system calls as a hostile job would and prints what each
 * returned, one "name: ok|ERRNO" line per call. Built twice by CMake as static executables:
 * for x86-64 (raw syscall instruction) and for i386 (gcc -m32, every call through int 0x80,
 * socket and ipc calls through the socketcall and ipc multiplexers as old programs make them).
 *
 *   probe all          every call, each in a child process of its own (calls have effects)
 *   probe NAME...      the named calls
 *   probe hello        prints a greeting (a static program that runs normally)
 *   probe tiocsti-tty  makes stdin (a terminal) the controlling terminal, then pushes 'X'
 *                      into its input with TIOCSTI (and, on x86-64, 0x100005412)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* A raw system call; returns the result, or -errno. */
#if defined(__i386__)
static long sys5(long nr, long a, long b, long c, long d, long e) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory");
  return ret;
}
#define ABI "i386"
#else
static long sys5(long nr, long a, long b, long c, long d, long e) {
  long ret = syscall(nr, a, b, c, d, e);
  return ret < 0 ? -errno : ret;
}
#define ABI "x86-64"
#endif

static long sys0(long nr) { return sys5(nr, 0, 0, 0, 0, 0); }

/* A child made by a raw clone: exits at once, and the parent reaps it. */
static long child_result(long pid) {
  if (pid == 0) sys5(SYS_exit_group, 0, 0, 0, 0, 0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return pid;
}

static long c_keyctl(void) { return sys5(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0, 0, 0); }
static long c_add_key(void) { return sys5(SYS_add_key, (long)"user", (long)"probe", (long)"v", 1, -3); }
static long c_request_key(void) { return sys5(SYS_request_key, (long)"user", (long)"probe-missing", 0, 0, 0); }
static long c_bpf(void) { return sys5(SYS_bpf, 5 /* BPF_PROG_LOAD */, 0, 0, 0, 0); }
static long c_perf_event_open(void) { return sys5(SYS_perf_event_open, 0, 0, -1, -1, 0); }
static long c_userfaultfd(void) { return sys5(SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0); }
static long c_io_uring_setup(void) { return sys5(SYS_io_uring_setup, 1, 0, 0, 0, 0); }
static long c_io_uring_enter(void) { return sys5(SYS_io_uring_enter, -1, 0, 0, 0, 0); }
static long c_io_uring_register(void) { return sys5(SYS_io_uring_register, -1, 0, 0, 0, 0); }
static long c_kexec_load(void) { return sys5(SYS_kexec_load, 0, 0, 0, 0, 0); }
#ifdef SYS_kexec_file_load
static long c_kexec_file_load(void) { return sys5(SYS_kexec_file_load, -1, -1, 0, 0, 0); }
#endif
static long c_init_module(void) { return sys5(SYS_init_module, 0, 0, (long)"", 0, 0); }
static long c_finit_module(void) { return sys5(SYS_finit_module, -1, (long)"", 0, 0, 0); }
static long c_delete_module(void) { return sys5(SYS_delete_module, (long)"probe", 0, 0, 0, 0); }
static long c_open_by_handle_at(void) { return sys5(SYS_open_by_handle_at, -1, 0, 0, 0, 0); }
static long c_mount(void) { return sys5(SYS_mount, 0, (long)"/", 0, MS_REMOUNT | MS_BIND, 0); }
static long c_umount2(void) { return sys5(SYS_umount2, (long)"/proc", MNT_DETACH, 0, 0, 0); }
static long c_pivot_root(void) { return sys5(SYS_pivot_root, (long)".", (long)".", 0, 0, 0); }
static long c_move_mount(void) { return sys5(SYS_move_mount, -1, (long)"", -1, (long)"", 0); }
static long c_open_tree(void) { return sys5(SYS_open_tree, AT_FDCWD, (long)"/", 0, 0, 0); }
static long c_fsopen(void) { return sys5(SYS_fsopen, (long)"tmpfs", 0, 0, 0, 0); }
static long c_fsconfig(void) { return sys5(SYS_fsconfig, -1, 0, 0, 0, 0); }
static long c_fsmount(void) { return sys5(SYS_fsmount, -1, 0, 0, 0, 0); }
static long c_fspick(void) { return sys5(SYS_fspick, AT_FDCWD, (long)"/", 0, 0, 0); }
static long c_mount_setattr(void) { return sys5(SYS_mount_setattr, -1, (long)"", 0, 0, 0); }
static long c_setns(void) { return sys5(SYS_setns, -1, 0, 0, 0, 0); }
static long c_unshare_user(void) { return sys5(SYS_unshare, CLONE_NEWUSER, 0, 0, 0, 0); }
static long c_unshare_mount(void) { return sys5(SYS_unshare, CLONE_NEWNS, 0, 0, 0, 0); }
static long c_unshare_files(void) { return sys5(SYS_unshare, CLONE_FILES, 0, 0, 0, 0); }
static long c_clone_user(void) { return child_result(sys5(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)); }
static long c_clone_plain(void) { return child_result(sys5(SYS_clone, SIGCHLD, 0, 0, 0, 0)); }
static long c_clone3(void) {
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  return child_result(sys5(SYS_clone3, (long)&args, sizeof args, 0, 0, 0));
}
static long c_acct(void) { return sys5(SYS_acct, 0, 0, 0, 0, 0); }
static long c_swapon(void) { return sys5(SYS_swapon, (long)"/probe-no-swap", 0, 0, 0, 0); }
static long c_swapoff(void) { return sys5(SYS_swapoff, (long)"/probe-no-swap", 0, 0, 0, 0); }
static long c_reboot(void) { return sys5(SYS_reboot, 0, 0, 0, 0, 0); /* no magic numbers: never reboots */ }
static long c_settimeofday(void) { return sys5(SYS_settimeofday, 0, 0, 0, 0, 0); }
static long c_clock_settime(void) { return sys5(SYS_clock_settime, 0, 0, 0, 0, 0); }
static long c_adjtimex(void) {
  char tx[256];
  memset(tx, 0, sizeof tx); /* modes 0: only reads */
  return sys5(SYS_adjtimex, (long)tx, 0, 0, 0, 0);
}
static long c_syslog(void) { return sys5(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, 0, 0, 0, 0); }
static long c_quotactl(void) { return sys5(SYS_quotactl, 0, 0, 0, 0, 0); }
static long c_iopl(void) { return sys5(SYS_iopl, 0, 0, 0, 0, 0); }
static long c_ioperm(void) { return sys5(SYS_ioperm, 0, 0, 0, 0, 0); }
static long c_lookup_dcookie(void) { return sys5(SYS_lookup_dcookie, 0, 0, 0, 0, 0); }
static long c_vhangup(void) { return sys0(SYS_vhangup); }
static long c_uselib(void) { return sys5(SYS_uselib, 0, 0, 0, 0, 0); }
static long c_personality_bsd(void) { return sys5(SYS_personality, 0x0006 /* PER_BSD */, 0, 0, 0, 0); }
static long c_personality_norandom(void) { return sys5(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */, 0, 0, 0, 0); }
static long c_personality_query(void) { return sys5(SYS_personality, 0xffffffffL, 0, 0, 0, 0); }
static long c_tiocsti(void) {
  char ch = 'X';
  return sys5(SYS_ioctl, 0, TIOCSTI, (long)&ch, 0, 0);
}
static long c_tioclinux(void) {
  char sub = 3;
  return sys5(SYS_ioctl, 0, TIOCLINUX, (long)&sub, 0, 0);
}
static long c_tcgets(void) {
  char buf[64];
  return sys5(SYS_ioctl, 0, TCGETS, (long)buf, 0, 0);
}
#if !defined(__i386__)
/* The kernel reads an ioctl request as 32 bits: this is TIOCSTI too. */
static long c_tiocsti_high(void) {
  char ch = 'X';
  return sys5(SYS_ioctl, 0, 0x100005412L, (long)&ch, 0, 0);
}
/* getpid in the x32 ABI's numbering. */
static long c_x32_getpid(void) { return sys0(0x40000000L | SYS_getpid); }
static long c_socket_vsock_high(void) { return sys5(SYS_socket, 0x100000000L | AF_VSOCK, SOCK_STREAM, 0, 0, 0); }
#endif
static long c_socket_vsock(void) { return sys5(SYS_socket, AF_VSOCK, SOCK_STREAM, 0, 0, 0); }
static long c_socket_unix(void) { return sys5(SYS_socket, AF_UNIX, SOCK_STREAM, 0, 0, 0); }
#if defined(__i386__)
/* Through the multiplexers, as glibc built for old kernels (and old glibc) makes them. */
static long c_socketcall_unix(void) {
  long args[3] = {AF_UNIX, SOCK_STREAM, 0};
  return sys5(SYS_socketcall, 1 /* SYS_SOCKET */, (long)args, 0, 0, 0);
}
static long c_socketcall_vsock(void) {
  long args[3] = {AF_VSOCK, SOCK_STREAM, 0};
  return sys5(SYS_socketcall, 1 /* SYS_SOCKET */, (long)args, 0, 0, 0);
}
static long c_socketcall_socketpair(void) {
  int sv[2];
  long args[4] = {AF_UNIX, SOCK_STREAM, 0, (long)sv};
  return sys5(SYS_socketcall, 8 /* SYS_SOCKETPAIR */, (long)args, 0, 0, 0);
}
static long c_ipc_shmget(void) {
  long id = sys5(SYS_ipc, 23 /* SHMGET */, 0 /* IPC_PRIVATE */, 4096, 01600 /* IPC_CREAT|0600 */, 0);
  if (id >= 0) sys5(SYS_ipc, 24 /* SHMCTL */, id, 0 /* IPC_RMID */ | 0x100 /* IPC_64 */, 0, 0);
  return id;
}
static long c_ipc_unknown(void) { return sys5(SYS_ipc, 99, 0, 0, 0, 0); }
#endif
static long c_getppid(void) { return sys0(SYS_getppid); }

struct check {
  const char* name;
  long (*fn)(void);
};

static const struct check k_checks[] = {
    {"keyctl", c_keyctl},
    {"add_key", c_add_key},
    {"request_key", c_request_key},
    {"bpf", c_bpf},
    {"perf_event_open", c_perf_event_open},
    {"userfaultfd", c_userfaultfd},
    {"io_uring_setup", c_io_uring_setup},
    {"io_uring_enter", c_io_uring_enter},
    {"io_uring_register", c_io_uring_register},
    {"kexec_load", c_kexec_load},
#ifdef SYS_kexec_file_load
    {"kexec_file_load", c_kexec_file_load},
#endif
    {"init_module", c_init_module},
    {"finit_module", c_finit_module},
    {"delete_module", c_delete_module},
    {"open_by_handle_at", c_open_by_handle_at},
    {"mount", c_mount},
    {"umount2", c_umount2},
    {"pivot_root", c_pivot_root},
    {"move_mount", c_move_mount},
    {"open_tree", c_open_tree},
    {"fsopen", c_fsopen},
    {"fsconfig", c_fsconfig},
    {"fsmount", c_fsmount},
    {"fspick", c_fspick},
    {"mount_setattr", c_mount_setattr},
    {"setns", c_setns},
    {"unshare_user", c_unshare_user},
    {"unshare_mount", c_unshare_mount},
    {"clone_user", c_clone_user},
    {"acct", c_acct},
    {"swapon", c_swapon},
    {"swapoff", c_swapoff},
    {"reboot", c_reboot},
    {"settimeofday", c_settimeofday},
    {"clock_settime", c_clock_settime},
    {"adjtimex", c_adjtimex},
    {"syslog", c_syslog},
    {"quotactl", c_quotactl},
    {"iopl", c_iopl},
    {"ioperm", c_ioperm},
    {"lookup_dcookie", c_lookup_dcookie},
    {"vhangup", c_vhangup},
    {"uselib", c_uselib},
    {"personality_bsd", c_personality_bsd},
    {"personality_norandom", c_personality_norandom},
    {"tiocsti", c_tiocsti},
    {"tioclinux", c_tioclinux},
#if !defined(__i386__)
    {"tiocsti_high", c_tiocsti_high},
    {"x32_getpid", c_x32_getpid},
#endif
    /* answered otherwise than the listed denials */
    {"clone3", c_clone3},
    {"socket_vsock", c_socket_vsock},
#if !defined(__i386__)
    {"socket_vsock_high", c_socket_vsock_high},
#endif
    /* allowed */
    {"unshare_files", c_unshare_files},
    {"clone_plain", c_clone_plain},
    {"personality_query", c_personality_query},
    {"tcgets", c_tcgets},
    {"socket_unix", c_socket_unix},
    {"getppid", c_getppid},
#if defined(__i386__)
    {"socketcall_unix", c_socketcall_unix},
    {"socketcall_vsock", c_socketcall_vsock},
    {"socketcall_socketpair", c_socketcall_socketpair},
    {"ipc_shmget", c_ipc_shmget},
    {"ipc_unknown", c_ipc_unknown},
#endif
};

static void print_result(const char* name, long r) {
  if (r >= 0) {
    printf("%s: ok\n", name);
  } else {
    const char* e = strerrorname_np((int)-r);
    printf("%s: %s\n", name, e ? e : "?");
  }
  fflush(stdout);
}

/* Runs one check in a child of its own (personality, unshare and clone change the caller). */
static int run_isolated(const struct check* c) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    print_result(c->name, c->fn());
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    printf("%s: child died (status 0x%x)\n", c->name, status);
    return 1;
  }
  return 0;
}

static int tiocsti_tty(void) {
  /* The job is a session leader without a terminal: take stdin as its controlling terminal. */
  if (ioctl(0, TIOCSCTTY, 0) != 0) {
    printf("TIOCSCTTY: %s\n", strerrorname_np(errno));
    return 1;
  }
  print_result("tiocsti", c_tiocsti());
#if !defined(__i386__)
  print_result("tiocsti_high", c_tiocsti_high());
#endif
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s all|hello|tiocsti-tty|NAME...\n", argv[0]);
    return 2;
  }
  if (!strcmp(argv[1], "hello")) {
    printf("hello from a static %s program\n", ABI);
    return 0;
  }
  if (!strcmp(argv[1], "tiocsti-tty")) return tiocsti_tty();
  const size_t n = sizeof k_checks / sizeof k_checks[0];
  int failed = 0;
  if (!strcmp(argv[1], "all")) {
    for (size_t i = 0; i < n; ++i) failed |= run_isolated(&k_checks[i]);
    return failed;
  }
  for (int a = 1; a < argc; ++a) {
    size_t i = 0;
    while (i < n && strcmp(k_checks[i].name, argv[a]) != 0) ++i;
    if (i == n) {
      fprintf(stderr, "%s: no check named %s\n", argv[0], argv[a]);
      return 2;
    }
    failed |= run_isolated(&k_checks[i]);
  }
  return failed;
}
