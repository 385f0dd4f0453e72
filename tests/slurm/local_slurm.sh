#!/usr/bin/env bash
# A real Slurm (22.05, Debian's slurm-wlm + munge) on this one machine, for the tests:
#
#   tests/slurm/local_slurm.sh start DIR [NODES]   munged + slurmctld + slurmd, everything under DIR
#   tests/slurm/local_slurm.sh stop DIR            stops them by the pids in their pid files
#
# DIR gets a generated slurm.conf (one default partition "debug"), the state, spool, logs and
# pid files, and a munge key and socket of its own, so nothing under /etc is touched (except
# the emulated hosts' lines in /etc/hosts, see below). Without NODES, one node: this host with
# all its CPUs. With NODES (2 to 8), that many nodes h1..hN, each an emulated host of
# tests/cluster/cluster.sh (made under DIR/cluster, CLUSTER_CPUS as there; by default every
# node has all of this machine's cores) with a slurmd of its own in its network namespace and
# hostname; slurmctld stays in this machine's namespace, on the cluster's bridge. Jobs then run
# across the nodes for real (srun --mpi=pmix, or mpirun inside the allocation), over TCP on the
# cluster's subnet: `. DIR/env` also sets Open MPI's interface settings for that. After `start`, `. DIR/env` points the clients (sbatch, squeue,
# scontrol, scancel) at it (SLURM_CONF). Runs as root (slurmd must, to start jobs as any user).
#
# Exit status: 0 started (or stopped), 77 when Slurm cannot run here (not installed, not root,
# a daemon that does not come up: the reason is printed and DIR/*.log hold the details),
# 2 on bad usage. Only one such Slurm can run on a machine at a time (fixed ports 6817/6818).
set -euo pipefail

usage() { echo "usage: $0 start DIR [NODES] | stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || [ $# -eq 3 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
nodes=${3:-}
case $nodes in ''|[2-8]) ;; *) echo "local_slurm: NODES must be 2 to 8, got '$nodes'" >&2; exit 2 ;; esac
cluster=$(cd "$(dirname "${BASH_SOURCE[0]}")/../cluster" && pwd)/cluster.sh
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
  local f
  for f in "$dir"/slurmd.h*.pid; do [ -e "$f" ] && stop_pidfile "$f" slurmd; done
  stop_pidfile "$dir/slurmctld.pid" slurmctld
  stop_pidfile "$dir/munge/munged.pid" munged
  if [ -d "$dir/cluster" ]; then "$cluster" stop "$dir/cluster" >/dev/null 2>&1 || true; fi
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

rm -rf "$dir/state" "$dir/spool" "$dir/munge" "$dir/tmp"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
if [ -n "$nodes" ]; then
  # the nodes: emulated hosts, each with all of this machine's cores unless CLUSTER_CPUS says
  if [ -z "${CLUSTER_CPUS:-}" ]; then
    CLUSTER_CPUS=$(for _ in $(seq "$nodes"); do printf '0-%d ' $((cpus - 1)); done)
    export CLUSTER_CPUS
  fi
  rc=0
  "$cluster" start "$nodes" "$dir/cluster" >"$dir/cluster.out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then cat "$dir/cluster.out" >&2; stop; [ "$rc" -eq 77 ] && skip "no emulated hosts"; exit 1; fi
  for k in $(seq "$nodes"); do mkdir -p "$dir/spool/h$k" "$dir/tmp/h$k"; done
fi
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
SlurmctldHost=$host${nodes:+(10.77.13.254)}
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
SlurmctldPidFile=$dir/slurmctld.pid
SlurmctldLogFile=$dir/slurmctld.log
EOF
if [ -z "$nodes" ]; then
  cat >> "$dir/slurm.conf" <<EOF
SlurmdSpoolDir=$dir/spool
SlurmdPidFile=$dir/slurmd.pid
SlurmdLogFile=$dir/slurmd.log
NodeName=$host CPUs=$cpus State=UNKNOWN
EOF
else
  # one slurmd per node, each in its own namespace on the same port: per-node spool, pid and
  # log files, and a per-node TmpFS (the nodes' PMIx plugins would collide in /tmp)
  cat >> "$dir/slurm.conf" <<EOF
SlurmdSpoolDir=$dir/spool/%n
SlurmdPidFile=$dir/slurmd.%n.pid
SlurmdLogFile=$dir/slurmd.%n.log
TmpFS=$dir/tmp/%n
EOF
  while read -r h list; do
    n=$(echo "$list" | tr ',' '\n' | while IFS=- read -r a b; do seq "$a" "${b:-$a}"; done | wc -l)
    echo "NodeName=$h NodeAddr=$(awk -v h="$h" '$2 == h { print $1 }' "$dir/cluster/hosts") CPUs=$n State=UNKNOWN" >> "$dir/slurm.conf"
  done < "$dir/cluster/cpus"
fi
echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >> "$dir/slurm.conf"
export SLURM_CONF=$dir/slurm.conf
echo "export SLURM_CONF=$dir/slurm.conf PATH=\$PATH:/usr/sbin" > "$dir/env"
[ -z "$nodes" ] || grep -v -e plm_rsh_agent -e CRNN_CLUSTER_DIR "$dir/cluster/env" >> "$dir/env"

slurmctld -f "$SLURM_CONF" -i >"$dir/slurmctld.out" 2>&1 || { stop; cat "$dir/slurmctld.out" >&2; skip "slurmctld did not start (see $dir/slurmctld.log)"; }
if [ -z "$nodes" ]; then
  slurmd -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 || { stop; cat "$dir/slurmd.out" >&2; skip "slurmd did not start (see $dir/slurmd.log)"; }
  names=$host
else
  # nsenter --net, not ip netns exec: that remounts /sys, and slurmd then finds no cgroup file
  # system; the node's own cores as the emulated host has them
  while read -r h list; do
    taskset -c "$list" nsenter --net="/run/netns/crnn-$h" unshare --uts /bin/sh -c \
      "hostname $h && exec slurmd -f '$SLURM_CONF' -N $h" >"$dir/slurmd.$h.out" 2>&1 ||
      { stop; cat "$dir/slurmd.$h.out" >&2; skip "slurmd of node $h did not start (see $dir/slurmd.$h.log)"; }
  done < "$dir/cluster/cpus"
  names=$(awk '{ print $1 }' "$dir/cluster/cpus" | paste -sd,)
fi

# the nodes are ready when sinfo shows them all idle
want=$(echo "$names" | tr ',' '\n' | wc -l)
for _ in $(seq 60); do
  idle=$(sinfo -h -N -n "$names" -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | wc -l || true)
  [ "$idle" -eq "$want" ] && { echo "local_slurm: up in $dir (nodes $names; . $dir/env)"; exit 0; }
  sleep 0.5
done
echo "local_slurm: not every node of $names is idle after 30 s:" >&2
sinfo -N >&2 || true
tail -n 20 "$dir/slurmctld.log" "$dir"/slurmd*.log >&2 || true
stop
skip "the node did not become idle"
