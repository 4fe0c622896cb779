#!/usr/bin/env bash
# The cost of the system-call filter, in one run, taken in turn (bench/interleave.c):
#  - a job launch (`/bin/true` in a busybox-static tree, the job as the caller) under the
#    default policy against `--seccomp none` (target: the filter adds at most 0.3 ms), the
#    same under a policy of the 31 calls the job makes (what does not grow with a policy's
#    size), and the kernel's part: installing the default policy's program
#    (bench/seccomp_cost.c);
#  - 10 million getppid calls inside a job, with and without the filter (target: at most 5%
#    slower), in alternating jobs, and as a reference with a one-instruction filter that allows
#    everything (the cost of having any filter at all).
# The policy's program is compiled into the cache first, as every launch after a site's first
# finds it. Prints a markdown section for docs/benchmarks.md. Run as root.
source "$(dirname "$0")/lib.sh"
bench_deps busybox-static
[ "$(id -u)" = 0 ] || { echo "bench/seccomp.sh: run as root" >&2; exit 1; }
out=$(mktemp -d /tmp/chrootctl-bench-seccomp.XXXXXX)
trap 'rm -rf "$out"' EXIT
chmod 0755 "$out"

# A busybox root with the getppid loop, and no site configuration: the built-in default policy.
root=$out/root
mkdir -p "$root"/{bin,tmp,var/tmp,proc,dev,etc}
cp /bin/busybox "$root/bin/busybox"
for a in sh true; do ln -s busybox "$root/bin/$a"; done
cc -O2 -static -o "$root/bin/seccomp_cost" "$(dirname "$0")/seccomp_cost.c"
cc -O2 -o "$out/interleave" "$(dirname "$0")/interleave.c"
sandbox=$out/sandbox
mkdir -p "$sandbox"
: > "$out/config.toml"
export CHROOTCTL_CONFIG=$out/config.toml
run=("$ctl" run --root "$root" --sandbox "$sandbox" --user root)
small=$out/small.toml
cat > "$small" <<'TOML'
allow = ["execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64", "mmap", "munmap",
         "mprotect", "read", "write", "close", "exit", "exit_group", "getuid", "geteuid", "getpid", "newfstatat", "fstat",
         "openat", "uname", "readlink", "getrandom", "rt_sigaction", "rt_sigprocmask", "ioctl", "getppid", "lseek", "stat",
         "access"]
TOML
"${run[@]}" --seccomp "$small" -- /bin/true
"${run[@]}" -- /bin/true  # compiles the default policy into the cache if it is not there
program=$("$(dirname "$ctl")/chrootctl-full" seccomp compile --policy default --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["program"])')
install_us=$("$root/bin/seccomp_cost" install "$program" 200)
instructions=$(( ($(stat -c %s "$program") - 56) / 8 ))

rounds=${ROUNDS:-500}
timings=$("$out/interleave" "$rounds" "${run[@]}" -- /bin/true ::: "${run[@]}" --seccomp none -- /bin/true \
  ::: "${run[@]}" --seccomp "$small" -- /bin/true | tr '\n' ' ')
read -r f_med f_mean n_med n_mean s_med s_mean <<< "$timings"
small_instructions=$("$(dirname "$ctl")/chrootctl-full" seccomp check --policy "$small" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["instructions"])')

calls=${CALLS:-10000000}
pairs=${PAIRS:-9}
: > "$out/loops"
for i in $(seq "$pairs"); do
  printf '%s %s %s\n' "$("${run[@]}" -- /bin/seccomp_cost getppid "$calls")" \
    "$("${run[@]}" --seccomp none -- /bin/seccomp_cost getppid "$calls")" \
    "$("${run[@]}" --seccomp none -- /bin/seccomp_cost getppid "$calls" allow-all)" >> "$out/loops"
done

python3 - "$f_med" "$f_mean" "$n_med" "$n_mean" "$rounds" "$out/loops" "$calls" "$(uname -r)" "$(nproc)" "$install_us" "$instructions" "$(cut -d' ' -f1 /proc/loadavg)" "$s_med" "$s_mean" "$small_instructions" <<'PY'
import statistics, sys
f_med, f_mean, n_med, n_mean = map(float, sys.argv[1:5])
rounds, loops, calls, kernel, cpus = int(sys.argv[5]), sys.argv[6], int(sys.argv[7]), sys.argv[8], sys.argv[9]
install_us, instructions, load = float(sys.argv[10]), int(sys.argv[11]), sys.argv[12]
s_med, s_mean, small_instructions = float(sys.argv[13]), float(sys.argv[14]), int(sys.argv[15])
pairs = [tuple(map(float, l.split())) for l in open(loops)]
f = statistics.median(p[0] for p in pairs)
n = statistics.median(p[1] for p in pairs)
a = statistics.median(p[2] for p in pairs)
print(f"Linux {kernel}, {cpus} CPUs, load average {load} at the end; a busybox-static root, the job as the caller "
      f"(root); the default policy's program ({instructions} instructions) already in the cache.\n")
print("| measure | default policy | `--seccomp none` | difference |")
print("|---|---:|---:|---:|")
print(f"| launch of `/bin/true`, median of {rounds} taken in turn (ms) | {f_med:.3f} | {n_med:.3f} | {f_med - n_med:+.3f} ms |")
print(f"| same, mean (ms) | {f_mean:.3f} | {n_mean:.3f} | {f_mean - n_mean:+.3f} ms |")
print(f"| same under a 31-call policy ({small_instructions} instructions), median / mean (ms) | {s_med:.3f} / {s_mean:.3f} | | "
      f"{s_med - n_med:+.3f} / {s_mean - n_mean:+.3f} ms |")
print(f"| of which the kernel installing the program, mean of 200 (us) | {install_us:.1f} | | |")
print(f"| getppid, {calls:,} calls in a job, median of {len(pairs)} jobs each, alternating (ns per call) | {f:.2f} | {n:.2f} | "
      f"{(f / n - 1) * 100:+.1f}% |")
print(f"| same, under a one-instruction filter that allows everything (ns per call) | | {a:.2f} | {(a / n - 1) * 100:+.1f}% |")
print()
print(f"- targets: the filter adds at most 0.3 ms to a launch ({f_med - n_med:+.3f} ms), and at most 5% to the getppid loop "
      f"({(f / n - 1) * 100:+.1f}%)")
print(f"- getppid per job, ns per call (default / none / allow-all): " + ", ".join(f"{x:.0f}/{y:.0f}/{z:.0f}" for x, y, z in pairs))
PY
