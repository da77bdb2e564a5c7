#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for trying `fmb run --executor slurm` and for the tests.
#
#   slurm/cluster.sh start    install slurm-wlm + munge if missing (apt, needs root), write the
#                             config, start munged, slurmctld and slurmd; idempotent
#   slurm/cluster.sh stop     stop the daemons started here, by the process ids in their pid files
#   slurm/cluster.sh status   daemons, node and queue
#   slurm/cluster.sh env      print `export SLURM_CONF=...` (eval "$(slurm/cluster.sh env)")
#
# Everything (config, munge key and socket, state, logs, pid files) lives in $FMB_SLURM_DIR
# (default /tmp/fmb-slurm); the node gets this machine's real CPU count and memory.
# Clients find the cluster through SLURM_CONF=$FMB_SLURM_DIR/etc/slurm.conf.
# Ports: $FMB_SLURM_PORT (slurmctld, default 6817) and the next one (slurmd).
set -euo pipefail

DIR="${FMB_SLURM_DIR:-/tmp/fmb-slurm}"
PORT="${FMB_SLURM_PORT:-6817}"
CONF="$DIR/etc/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"
export SLURM_CONF="$CONF"

log() { echo "cluster.sh: $*" >&2; }

alive() {  # alive NAME: the daemon named in $DIR/run/NAME.pid is running
  local pidfile="$DIR/run/$1.pid" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null; then
    return
  fi
  [[ "$(id -u)" == 0 ]] || { log "slurm-wlm and munge are missing; install them as root"; exit 1; }
  log "installing slurm-wlm and munge (apt)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
}

write_config() {
  local host cpus mem_mb
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
  mkdir -p "$DIR"/{etc,munge,run,log,state,spool}
  chmod 700 "$DIR/munge"
  if [[ ! -s "$DIR/munge/munge.key" ]]; then
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$DIR/munge/munge.key" --force
    else
      dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
  fi
  chmod 600 "$DIR/munge/munge.key"
  cat >"$CONF.tmp" <<EOF
# Written by slurm/cluster.sh: a one-node cluster for FMB ($(date -u +%FT%TZ)).
ClusterName=fmb
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SchedulerType=sched/backfill
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

wait_for() {  # wait_for SECONDS COMMAND...: retry until COMMAND succeeds
  local limit=$1; shift
  for _ in $(seq $((limit * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

start() {
  install_packages
  if alive munged && alive slurmctld && alive slurmd; then
    log "already running ($DIR)"
    echo "export SLURM_CONF=$CONF"
    return
  fi
  stop_daemons quiet
  write_config
  munged --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for 10 alive munged || { log "munged did not start (see $DIR/log/munged.log)"; exit 1; }
  slurmctld -f "$CONF"
  wait_for 20 scontrol ping || { log "slurmctld did not start (see $DIR/log/slurmctld.log)"; exit 1; }
  slurmd -f "$CONF" -N "$(hostname -s)"
  node_idle() { sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'; }
  wait_for 30 node_idle || { log "slurmd did not register (see $DIR/log/slurmd.log)"; exit 1; }
  scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
  log "started: $(sinfo -h -o '%P %D node(s) %c cpu(s) %m MB %t')"
  echo "export SLURM_CONF=$CONF"
}

stop_daemons() {  # stop_daemons [quiet]: kill by pid file, slurmd first, munged last
  local name pid
  for name in slurmd slurmctld munged; do
    if alive "$name"; then
      pid="$(cat "$DIR/run/$name.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
      [[ "${1:-}" == quiet ]] || log "stopped $name (pid $pid)"
    fi
    rm -f "$DIR/run/$name.pid"
  done
}

status() {
  local name rc=0
  for name in munged slurmctld slurmd; do
    if alive "$name"; then echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"; else echo "$name: stopped"; rc=1; fi
  done
  if [[ $rc == 0 ]]; then
    sinfo -N -o '%N %P %c %m %t' || rc=1
    squeue || rc=1
  fi
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop_daemons ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 {start|stop|status|env}" >&2; exit 2 ;;
esac
