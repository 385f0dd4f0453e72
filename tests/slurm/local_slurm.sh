#!/usr/bin/env bash
# A real Slurm (22.05, Debian's slurm-wlm + munge) on this one machine, for the tests:
#
#   tests/slurm/local_slurm.sh start DIR   munged + slurmctld + slurmd, everything under DIR
#   tests/slurm/local_slurm.sh stop DIR    stops them by the pids in their pid files
#
# DIR gets a generated slurm.conf (one node: this host with all its CPUs, one default partition
# "debug"), the state, spool, logs and pid files, and a munge key and socket of its own, so
# nothing under /etc is touched. After `start`, `. DIR/env` points the clients (sbatch, squeue,
# scontrol, scancel) at it (SLURM_CONF). Runs as root (slurmd must, to start jobs as any user).
#
# Exit status: 0 started (or stopped), 77 when Slurm cannot run here (not installed, not root,
# a daemon that does not come up: the reason is printed and DIR/*.log hold the details),
# 2 on bad usage. Only one such Slurm can run on a machine at a time (fixed ports 6817/6818).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
skip() { echo "local_slurm: cannot run Slurm here: $*" >&2; exit 77; }

stop_pidfile() { # stop_pidfile FILE NAME: TERM, wait up to 10 s, then KILL
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "local_slurm: $2 ($pid) ignored SIGTERM: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

stop() {
  # the jobs first: slurmstepd and the jobs' processes outlive slurmd
  if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    local jobs
    jobs=$(SLURM_CONF=$dir/slurm.conf timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      # shellcheck disable=SC2086
      SLURM_CONF=$dir/slurm.conf timeout 10 scancel $jobs 2>/dev/null || true
      for _ in $(seq 60); do
        [ -z "$(SLURM_CONF=$dir/slurm.conf timeout 10 squeue -h -o %A 2>/dev/null || true)" ] && break
        sleep 0.5
      done
    fi
  fi
  stop_pidfile "$dir/slurmd.pid" slurmd
  stop_pidfile "$dir/slurmctld.pid" slurmctld
  stop_pidfile "$dir/munge/munged.pid" munged
}

if [ "$cmd" = stop ]; then
  stop
  registry=${TMPDIR:-/tmp}/crnn-local-slurm.dir
  [ "$(cat "$registry" 2>/dev/null)" = "$dir" ] && rm -f "$registry"
  exit 0
fi
[ "$cmd" = start ] || usage

for p in munged slurmctld slurmd sbatch scontrol sinfo; do
  command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || skip "$p is not installed (Debian: apt-get install slurm-wlm munge, see launch/deps.sh)"
done
[ "$(id -u)" -eq 0 ] || skip "the local Slurm runs its daemons as root"
id munge >/dev/null 2>&1 || skip "no user 'munge' (Debian's munge package creates it)"
export PATH=$PATH:/usr/sbin
host=$(hostname -s)
cpus=$(nproc --all)

# anything of ours still running from an earlier start, in this folder or in the one a killed
# test left behind (the folder of the last start is recorded in $registry)
registry=${TMPDIR:-/tmp}/crnn-local-slurm.dir
if [ -s "$registry" ] && [ "$(cat "$registry")" != "$dir" ] && [ -d "$(cat "$registry")" ]; then
  "$0" stop "$(cat "$registry")" || true
fi
stop
echo "$dir" > "$registry"
# a Slurm of someone else's on the same ports would take our jobs: refuse rather than mix
if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
  skip "a slurmctld or slurmd is already running on this machine (pids $(pgrep -d, -x 'slurmctld|slurmd')); only one local Slurm can run at a time"
fi

rm -rf "$dir/state" "$dir/spool" "$dir/munge"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 755 "$dir"

# munge: a key and a socket of our own, the daemon as user munge (as Debian runs it); munged
# wants its socket folder executable by all
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chown -R munge:munge "$dir/munge"
chmod 711 "$dir/munge"
chmod 400 "$dir/munge/munge.key"
sock=$dir/munge/munge.socket
runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$sock" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
  --seed-file="$dir/munge/munged.seed" >"$dir/munged.out" 2>&1 ||
  { cat "$dir/munged.out" >&2; skip "munged did not start"; }
munge -S "$sock" -n </dev/null | unmunge -S "$sock" >/dev/null 2>&1 || { stop; skip "munge -n | unmunge fails (see $dir/munge/munged.log)"; }

# the settings that work without systemd or cgroups in a container (task/affinity binds the
# tasks with sched_setaffinity, no cgroups needed: srun --cpu-bind=cores works)
cat > "$dir/slurm.conf" <<EOF
ClusterName=crnn-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=10
MinJobAge=600
# start jobs at once (the default defers batch jobs by up to 3 s): the tests wait less
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$dir/slurm.conf
echo "export SLURM_CONF=$dir/slurm.conf PATH=\$PATH:/usr/sbin" > "$dir/env"

slurmctld -f "$SLURM_CONF" -i >"$dir/slurmctld.out" 2>&1 || { stop; cat "$dir/slurmctld.out" >&2; skip "slurmctld did not start (see $dir/slurmctld.log)"; }
slurmd -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 || { stop; cat "$dir/slurmd.out" >&2; skip "slurmd did not start (see $dir/slurmd.log)"; }

# the node is ready when sinfo shows it idle
for _ in $(seq 60); do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  [ "$state" = idle ] && { echo "local_slurm: up in $dir (node $host, $cpus CPUs; . $dir/env)"; exit 0; }
  sleep 0.5
done
echo "local_slurm: the node is '${state:-unknown}' after 30 s:" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
stop
skip "the node did not become idle"
