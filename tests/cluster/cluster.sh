#!/usr/bin/env bash
# An emulated cluster of hosts on this one machine, for the tests and for trying things by hand:
#
#   tests/cluster/cluster.sh start N DIR [RATE]   N hosts h1..hN (2 <= N <= 8)
#   tests/cluster/cluster.sh stop DIR             removes everything start made
#   tests/cluster/cluster.sh cut DIR HOST         takes HOST's interface down (TCP stays open)
#   tests/cluster/cluster.sh shape DIR RATE|none  reshapes every link of the running cluster
#   tests/cluster/cluster.sh run DIR HOST CMD...  runs CMD on HOST (its network and hostname)
#
# Each host is a network namespace (crnn-h1, ...) with a hostname of its own (unshare --uts in
# the agent) and one interface, eth0, a veth joined to a bridge (crnnbr0) in this machine's
# namespace. Hosts and bridge share the private test subnet 10.77.13.0/24 (hosts .1 .. .N, the
# bridge .254), which exists only inside these namespaces and on the bridge: nothing touches
# this machine's own interfaces or routes, and no address outside the subnet is used. RATE (e.g.
# 1gbit, 100mbit) shapes every link in both directions with tc's token bucket filter (a bucket
# of 2 ms at the rate, at least 32 KiB).
#
# DIR receives:
#   agent      Open MPI's rsh agent: `agent HOST CMD...` runs CMD on HOST, pinned to the host's
#              own cores: host k gets core (k-1) mod the machine's cores, or the k-th entry of
#              CLUSTER_CPUS (a taskset list per host, e.g. CLUSTER_CPUS="0-1 1": h1 has two
#              cores, h2 one), so that hosts of different sizes can be emulated
#   hostfile   Open MPI's syntax, one line per host: `h1 slots=2`
#   env        `. DIR/env` sets the MCA parameters mpirun needs (the agent, the subnet for its
#              daemons' and the ranks' TCP, tcp/self/vader, waiting ranks yield their core) and
#              CRNN_CLUSTER_DIR
#   hosts      the names and addresses added to /etc/hosts (between marker lines, removed on stop)
# Then `mpirun --hostfile DIR/hostfile --bind-to none PROGRAM` (or launch/crnn-launch with
# CRNN_HOSTFILE=DIR/hostfile) runs across the hosts.
#
# Exit status: 0 done, 77 when the cluster cannot be made here (not root, no `ip`, namespaces
# refused: the reason is printed), 2 on bad usage. One such cluster runs on a machine at a time:
# a start first removes what an earlier one (a killed test's) left behind.
set -euo pipefail

usage() {
  echo "usage: $0 start N DIR [RATE] | stop DIR | cut DIR HOST | shape DIR RATE|none | run DIR HOST CMD..." >&2
  exit 2
}
skip() { echo "cluster: cannot make the emulated cluster here: $*" >&2; exit 77; }
[ $# -ge 2 ] || usage
cmd=$1
shift

SUBNET=10.77.13.0/24
PREFIX=10.77.13
BRIDGE=crnnbr0
MARK_BEGIN="# crnn emulated cluster: begin"
MARK_END="# crnn emulated cluster: end"
registry=${TMPDIR:-/tmp}/crnn-cluster.dir

host_ns() { echo "crnn-$1"; }

remove_etc_hosts() {
  # in place (cat >, not a rename): /etc/hosts is often a bind mount
  if grep -qF "$MARK_BEGIN" /etc/hosts 2>/dev/null; then
    local kept
    kept=$(awk -v b="$MARK_BEGIN" -v e="$MARK_END" '$0==b{skip=1;next} $0==e{skip=0;next} !skip' /etc/hosts)
    printf '%s\n' "$kept" > /etc/hosts
  fi
}

# The token bucket holds 2 ms of the rate (at least 32 KiB): a larger one lets whole messages
# through at the machine's speed, so that small transfers would not see the link at all.
bucket_bytes() {
  awk -v r="$1" 'BEGIN {
    n = r + 0; u = substr(r, length(n "") + 1, 1); m = u == "k" ? 1e3 : u == "m" ? 1e6 : u == "g" ? 1e9 : 1
    b = int(n * m * 0.002 / 8); if (b < 32768) b = 32768; print b }'
}
valid_rate() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?[kmg]?bit$ ]]; }

stop_cluster() { # stop_cluster DIR: everything of ours, whatever state it is in
  local dir=$1 h ns
  # processes still inside our namespaces (ranks, daemons of a killed test)
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^crnn-h[0-9]*$' || true); do
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^crnn-h[0-9]*$' || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for h in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^crnnv[0-9]*$' || true); do
    ip link del "$h" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  remove_etc_hosts
  [ -z "$dir" ] || rm -f "$dir/agent" "$dir/hostfile" "$dir/env" "$dir/hosts" "$dir/cpus"
}

case $cmd in
  stop)
    [ $# -eq 1 ] || usage
    dir=$1
    [ "$(id -u)" -eq 0 ] || { echo "cluster: stop needs root" >&2; exit 1; }
    stop_cluster "$dir"
    [ "$(cat "$registry" 2>/dev/null)" = "$(cd "$dir" 2>/dev/null && pwd)" ] && rm -f "$registry"
    exit 0 ;;
  cut)
    [ $# -eq 2 ] || usage
    ip netns exec "$(host_ns "$2")" ip link set eth0 down
    exit 0 ;;
  shape)
    # every link of the running cluster to RATE, or unshaped (none), in place
    [ $# -eq 2 ] || usage
    rate=$2
    [ "$rate" = none ] || valid_rate "$rate" || { echo "cluster: RATE must read like 100mbit or 1gbit, or none" >&2; exit 2; }
    for h in $(awk '{print $1}' "$1/cpus"); do
      k=${h#h}
      if [ "$rate" = none ]; then
        tc qdisc del dev "crnnv$k" root 2>/dev/null || true
        ip netns exec "$(host_ns "$h")" tc qdisc del dev eth0 root 2>/dev/null || true
      else
        b=$(bucket_bytes "$rate")
        tc qdisc replace dev "crnnv$k" root tbf rate "$rate" burst "$b" latency 50ms
        ip netns exec "$(host_ns "$h")" tc qdisc replace dev eth0 root tbf rate "$rate" burst "$b" latency 50ms
      fi
    done
    exit 0 ;;
  run)
    [ $# -ge 3 ] || usage
    dir=$1 h=$2
    shift 2
    exec "$dir/agent" "$h" "$@" ;;
  start) ;;
  *) usage ;;
esac

{ [ $# -ge 2 ] && [ $# -le 3 ]; } || usage
n=$1 rate=${3:-}
case $n in [2-8]) ;; *) echo "cluster: N must be 2 to 8, got '$n'" >&2; exit 2 ;; esac
if [ -n "$rate" ] && ! valid_rate "$rate"; then
  echo "cluster: RATE must read like 100mbit or 1gbit, got '$rate'" >&2
  exit 2
fi
mkdir -p "$2"
dir=$(cd "$2" && pwd)

[ "$(id -u)" -eq 0 ] || skip "making network namespaces needs root"
command -v ip >/dev/null || skip "no 'ip' (Debian: apt-get install iproute2, see launch/deps.sh)"
{ command -v unshare >/dev/null && command -v taskset >/dev/null; } || skip "no unshare or taskset (util-linux)"
[ -z "$rate" ] || command -v tc >/dev/null || skip "no 'tc' to shape the links (iproute2)"

# an earlier cluster (a killed test's) first, wherever it was
if [ -s "$registry" ]; then stop_cluster "$(cat "$registry")"; fi
stop_cluster "$dir"
# the subnet must be ours alone: no address or route of this machine may overlap it
if ip -o addr show | grep -q " inet $PREFIX\." || ip route show | grep -q "^$PREFIX\."; then
  skip "this machine already uses addresses in $SUBNET"
fi
echo "$dir" > "$registry"
fail() { echo "cluster: $*" >&2; stop_cluster "$dir"; exit 77; }

ip link add "$BRIDGE" type bridge 2>/dev/null || fail "cannot make a bridge (ip link add type bridge refused)"
ip addr add "$PREFIX.254/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
cores=$(nproc --all)
read -ra host_cpus <<< "${CLUSTER_CPUS:-}"
burst=
[ -z "$rate" ] || burst=$(bucket_bytes "$rate")
: > "$dir/hostfile"
: > "$dir/cpus"
: > "$dir/hosts"
for k in $(seq 1 "$n"); do
  h=h$k ns=$(host_ns "h$k") veth=crnnv$k
  ip netns add "$ns" 2>/dev/null || fail "cannot make a network namespace (ip netns add refused)"
  ip link add "$veth" type veth peer name eth0 netns "$ns" || fail "cannot make a veth pair"
  ip link set "$veth" master "$BRIDGE"
  ip link set "$veth" up
  ip netns exec "$ns" ip addr add "$PREFIX.$k/24" dev eth0
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip link set lo up
  if [ -n "$rate" ]; then
    tc qdisc add dev "$veth" root tbf rate "$rate" burst "$burst" latency 50ms || fail "tc refused rate $rate"
    ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 50ms
  fi
  echo "$h slots=2" >> "$dir/hostfile"
  echo "$h ${host_cpus[$((k - 1))]:-$(( (k - 1) % cores ))}" >> "$dir/cpus"
  echo "$PREFIX.$k $h" >> "$dir/hosts"
done
{ echo "$MARK_BEGIN"; cat "$dir/hosts"; echo "$MARK_END"; } >> /etc/hosts

# the agent: Open MPI calls it as `agent HOST CMD...` (as it would call ssh)
cat > "$dir/agent" <<EOF
#!/bin/sh
# Runs CMD on an emulated host of $dir: its network namespace, its own hostname, its own cores.
h=\$1
shift
cpus=\$(awk -v h="\$h" '\$1 == h { print \$2 }' "$dir/cpus")
[ -n "\$cpus" ] || { echo "cluster agent: unknown host \$h" >&2; exit 255; }
exec taskset -c "\$cpus" ip netns exec "crnn-\$h" unshare --uts /bin/sh -c "hostname \$h; \$*"
EOF
chmod 755 "$dir/agent"
# env holds only export lines (the tests read it). yield_when_idle: the hosts share this
# machine's cores, so a rank waiting in MPI yields its core to the rank it waits for (real hosts
# each have their own; Open MPI does this by itself only when it sees one node oversubscribed).
cat > "$dir/env" <<EOF
export CRNN_CLUSTER_DIR=$dir
export OMPI_MCA_plm_rsh_agent=$dir/agent
export OMPI_MCA_oob_tcp_if_include=$SUBNET
export OMPI_MCA_btl_tcp_if_include=$SUBNET
export OMPI_MCA_btl=tcp,self,vader
export OMPI_MCA_mpi_yield_when_idle=1
EOF

# every host answers the others (where ping is installed)
command -v ping >/dev/null &&
for k in $(seq 2 "$n"); do
  ip netns exec "$(host_ns h1)" ping -c 1 -W 2 "$PREFIX.$k" >/dev/null 2>&1 || fail "h1 cannot reach h$k ($PREFIX.$k)"
done
echo "cluster: $n hosts up in $dir (h1..h$n on $SUBNET${rate:+ at $rate}; . $dir/env)"
