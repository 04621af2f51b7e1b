#!/usr/bin/env bash
# A single-node Slurm cluster on the loopback address, for the tests of `simjob slurm`.
#
#   scripts/slurm-test-cluster.sh start DIR   installs Slurm and munge from Debian's packages when
#                                             missing, starts munged, slurmctld and slurmd with
#                                             their configuration, state, logs and pid files in
#                                             DIR, waits until the node is idle, and prints
#                                             SLURM_CONF=DIR/slurm.conf
#   scripts/slurm-test-cluster.sh stop DIR    stops the daemons it started there, by pid
#
# Nothing outside DIR is touched apart from the packages: its own munge key and socket, its own
# ports (from SIMJOB_SLURM_PORT, default 16817 and the next one), no systemd.
set -euo pipefail

action=${1:-}
dir=${2:-}
[ -n "$action" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

stop() {
  for name in slurmd slurmctld munged; do
    pidfile="$dir/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      as_root kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && as_root kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [ "$action" = stop ]; then
  stop
  exit 0
fi
[ "$action" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# The daemons must not inherit the caller's descriptors beyond stdio: a parent that learns of
# this script's end by a pipe or socket closing (Foundation's Process does) would wait forever.
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  if [ "$n" -gt 2 ] 2>/dev/null && [ "$n" -lt 255 ]; then eval "exec $n>&-" 2>/dev/null || true; fi
done

missing=()
command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
command -v munged >/dev/null 2>&1 || missing+=(munge)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
chmod 755 "$dir"
mkdir -p "$dir/munge" "$dir/state" "$dir/spool"
port=${SIMJOB_SLURM_PORT:-16817}
host=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)

# munge: its own key and socket, run as the munge user.
key="$dir/munge/munge.key"
if [ ! -f "$key" ]; then
  head -c 1024 /dev/urandom > "$key"
fi
as_root chown -R munge:munge "$dir/munge"
as_root chmod 700 "$dir/munge"
as_root chmod 400 "$key"
socket="$dir/munge/munge.socket"
as_root -u munge true 2>/dev/null || true
if [ "$(id -u)" -eq 0 ]; then
  runuser -u munge -- munged --socket="$socket" --key-file="$key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" --force
else
  sudo -u munge munged --socket="$socket" --key-file="$key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" --force
fi
for _ in $(seq 1 50); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { echo "munged did not start: $(as_root cat "$dir/munge/munged.log" 2>/dev/null | tail -3)" >&2; exit 1; }
as_root cat "$dir/munge/munged.pid" > "$dir/munged.pid"
# The socket's folder must be reachable by the daemons and clients.
as_root chmod 755 "$dir/munge"

cat > "$dir/slurm.conf" <<EOF
ClusterName=simjobtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MinJobAge=3600
SlurmdParameters=config_overrides
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

export SLURM_CONF="$dir/slurm.conf"
as_root env SLURM_CONF="$SLURM_CONF" slurmctld -c -f "$SLURM_CONF"
as_root env SLURM_CONF="$SLURM_CONF" slurmd -N "$host" -f "$SLURM_CONF"
for _ in $(seq 1 100); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "${state:-}" != idle ]; then
  echo "the Slurm node did not become idle (state '${state:-none}'); slurmctld: $(tail -3 "$dir/slurmctld.log" 2>/dev/null); slurmd: $(tail -3 "$dir/slurmd.log" 2>/dev/null)" >&2
  stop
  exit 1
fi
echo "SLURM_CONF=$SLURM_CONF"
