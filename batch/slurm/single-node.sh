#!/usr/bin/env bash
# A real one-node Slurm cluster in a directory, for tests and the quick start (needs root and
# Debian's slurmctld, slurmd, slurm-client and munge packages; no systemd needed).
#
#   single-node.sh start DIR [--plugin SO --chrootctl BIN [--store STORE]] [--cpus N]
#   single-node.sh stop DIR
#
# start: DIR (new or empty) gets its own munge key and socket, a slurm.conf (ports chosen free
# on 127.0.0.1, proctrack/linuxproc and task/affinity: no cgroup is made), state, spool and log
# directories, and with --plugin a plugstack.conf that loads chrootctl_spank.so as `required`
# (jobdirs= in DIR/jobdirs). munged, slurmctld and slurmd are started and the node is waited
# for. Then:   export SLURM_CONF=DIR/etc/slurm.conf   and use srun, sbatch, squeue as usual.
# stop: cancels every job, stops the three daemons (by the pids they wrote into DIR/run), kills
# any process of the cluster left with its working directory in DIR, and removes nothing else;
# `rm -rf DIR` afterwards. Safe to call twice, and after a failed start.
set -euo pipefail

die() { echo "single-node.sh: $*" >&2; exit 1; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free TCP port found on 127.0.0.1"
}

# Stops the process whose pid is in FILE (TERM, then KILL after 10 s).
stop_pidfile() {
  local file=$1 pid i
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

start() {
  local dir=$1; shift
  local plugin="" ctl="" store="" cpus=24
  while [ $# -gt 0 ]; do
    case $1 in
      --plugin) plugin=$2; shift 2 ;;
      --chrootctl) ctl=$2; shift 2 ;;
      --store) store=$2; shift 2 ;;
      --cpus) cpus=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "start needs root (slurmd runs jobs as their users)"
  for tool in munged slurmctld slurmd srun scontrol; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install munge slurmctld slurmd slurm-client)"
  done
  if [ -n "$plugin" ]; then
    [ -f "$plugin" ] || die "--plugin $plugin: no such file"
    [ -n "$ctl" ] || die "--plugin needs --chrootctl BIN"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  # Users' srun must reach the munge socket and read the configuration.
  chmod 0755 "$dir"
  mkdir -p "$dir"/{etc,munge,state,spool,log,run,lib}
  chmod 0700 "$dir/state" "$dir/spool"

  # munge: a key of its own and a socket in DIR, nothing shared with a system munged.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$dir/munge/munge.key"
  munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

  local ctld_port slurmd_port host
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  [ "$ctld_port" != "$slurmd_port" ] || slurmd_port=$(free_port)
  host=$(hostname -s)
  cat > "$dir/etc/slurm.conf" <<EOF
# Written by single-node.sh: one node, one partition, everything in $dir.
ClusterName=chrootctl-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmdDebug=verbose
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=60
MaxArraySize=1001
PlugStackConfig=$dir/etc/plugstack.conf
NodeName=node1 NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=node1 Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -n "$plugin" ]; then
    # A copy every user can load (srun loads the plugin too), owned by root.
    install -m 0755 "$plugin" "$dir/lib/chrootctl_spank.so"
    echo "required $dir/lib/chrootctl_spank.so chrootctl=$ctl${store:+ store=$store} jobdirs=$dir/jobdirs" > "$dir/etc/plugstack.conf"
  else
    : > "$dir/etc/plugstack.conf"
  fi
  chmod 0644 "$dir/etc/"*

  export SLURM_CONF="$dir/etc/slurm.conf"
  slurmctld -f "$SLURM_CONF" -i
  slurmd -f "$SLURM_CONF" -N node1
  local i state=""
  for i in $(seq 1 150); do
    state=$(scontrol show node node1 2>/dev/null | sed -n 's/.*State=\([A-Z+_]*\).*/\1/p' | head -1)
    case $state in IDLE*|MIXED*|ALLOCATED*) echo "single-node.sh: node1 is up ($state); export SLURM_CONF=$SLURM_CONF"; return 0 ;; esac
    sleep 0.2
  done
  echo "single-node.sh: node1 did not come up (state '${state:-unknown}'); logs in $dir/log:" >&2
  tail -n 20 "$dir/log/"*.log >&2 || true
  return 1
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/etc/slurm.conf" ] && [ -s "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
    export SLURM_CONF="$dir/etc/slurm.conf"
    scancel --quiet --full --partition=debug 2>/dev/null || true
    for _ in $(seq 1 100); do
      [ -z "$(squeue -h -t running,completing,pending 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_pidfile "$dir/run/slurmd.pid"
  stop_pidfile "$dir/run/slurmctld.pid"
  # A slurmstepd that outlived slurmd works in DIR's spool: only those are killed.
  local p cwd
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
    cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
    case $cwd in "$dir"|"$dir"/*) kill -KILL "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  stop_pidfile "$dir/run/munged.pid"
}

[ $# -ge 2 ] || usage
case $1 in
  start) cmd_dir=$2; shift 2; start "$cmd_dir" "$@" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
