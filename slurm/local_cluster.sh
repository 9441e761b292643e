#!/usr/bin/env bash
# Bring up / stop / inspect a real single-node Slurm cluster on this machine.
#
#   slurm/local_cluster.sh start    # install (if needed), configure, start; idempotent
#   slurm/local_cluster.sh stop     # stop slurmd, slurmctld, slurmdbd, mariadb, munged
#   slurm/local_cluster.sh stop slurmdbd   # stop only the named daemons ('start' brings them back)
#   slurm/local_cluster.sh status   # daemon states + sinfo; exit 0 iff all up
#
# For development, CI and trying the framework on a laptop (Debian/Ubuntu,
# Slurm 22.05). Daemons are started directly (no systemd needed). Everything
# listens on 127.0.0.1. Config: /etc/slurm/slurm.conf, /etc/slurm/slurmdbd.conf.
# State and logs: $RLVR_SLURM_DIR (default /var/lib/rlvr-local-slurm).
#
# The cluster mirrors what the framework meets on real clusters:
#   partitions debug (default, PriorityTier=1, preemptible by requeue) and
#   high (PriorityTier=10); preemption delivers the job's --signal user signal;
#   accounting through slurmdbd (sacct works) with association enforcement
#   (an unknown --account is rejected at submit time); MaxArraySize=201.
set -euo pipefail

CLUSTER="${RLVR_SLURM_CLUSTER:-rlvr-local}"
BASE="${RLVR_SLURM_DIR:-/var/lib/rlvr-local-slurm}"
ACCOUNT="${RLVR_SLURM_ACCOUNT:-rlvr}"
CONF_DIR=/etc/slurm
SLURM_CONF_FILE="$CONF_DIR/slurm.conf"
DBD_CONF_FILE="$CONF_DIR/slurmdbd.conf"
LOG_DIR="$BASE/log"
RUN_DIR="$BASE/run"
DB_NAME=slurm_acct_db
DB_USER=slurm
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
NEEDED_CMDS=(slurmctld slurmd slurmdbd sacctmgr sinfo sbatch munged munge mysqld_safe mysqladmin mariadb)
WAIT_S="${RLVR_SLURM_WAIT:-60}"
HOST="$(hostname -s)"
PATH="/usr/sbin:/sbin:$PATH"
export PATH SLURM_CONF="$SLURM_CONF_FILE"

# A start called from inside a job must not hand the job's SLURM_* to the daemons.
unset_slurm_env() { local v; for v in $(compgen -e | grep -E '^SLURM_' || true); do unset "$v"; done; export SLURM_CONF="$SLURM_CONF_FILE"; }
unset_slurm_env

say() { echo "local slurm: $*"; }
die() { echo "local slurm: $1" >&2; exit "${2:-1}"; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- daemons ---
# name -> pidfile, process name
pidfile_of() {
  case "$1" in
    munged) echo /run/munge/munged.pid ;;
    mariadb) echo /run/mysqld/mysqld.pid ;;
    slurmdbd) echo "$RUN_DIR/slurmdbd.pid" ;;
    slurmctld) echo "$RUN_DIR/slurmctld.pid" ;;
    slurmd) echo "$RUN_DIR/slurmd.pid" ;;
  esac
}
comm_of() { case "$1" in mariadb) echo 'mariadbd|mysqld' ;; *) echo "$1" ;; esac; }

# Print the daemon's pid if it runs (pidfile first, then by exact process name).
daemon_pid() {
  local name="$1" pf comm pid
  pf="$(pidfile_of "$name")"; comm="$(comm_of "$name")"
  if [[ -r $pf ]]; then
    pid="$(tr -dc 0-9 <"$pf" 2>/dev/null || true)"
    if [[ -n $pid && -r /proc/$pid/comm ]] && grep -qxE "$comm" "/proc/$pid/comm" 2>/dev/null; then
      echo "$pid"; return 0
    fi
  fi
  pid="$(pgrep -x "$comm" 2>/dev/null | head -n1 || true)"
  [[ -n $pid ]] && { echo "$pid"; return 0; }
  return 1
}
running() { daemon_pid "$1" >/dev/null; }

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s.
wait_until() {
  local t="$1" what="$2"; shift 2
  local end=$((SECONDS + t))
  while ! "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}

munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
db_ok() { mysqladmin --protocol=socket ping >/dev/null 2>&1; }
dbd_ok() { timeout 10 sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; }
ctld_ok() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

# Node state as sinfo reports it (e.g. idle, mixed, allocated, down*, drained).
node_state() { timeout 10 sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1; }
node_usable() {
  local s; s="$(node_state)"
  [[ $s =~ ^(idle|mixed|allocated|completing)$ ]]
}

# --------------------------------------------------------------- packages ---
missing_cmds() {
  local c out=()
  for c in "${NEEDED_CMDS[@]}"; do command -v "$c" >/dev/null 2>&1 || out+=("$c"); done
  [[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/accounting_storage_mysql.so ]] ||
    compgen -G '/usr/lib/*/slurm-wlm/accounting_storage_mysql.so' >/dev/null || out+=(accounting_storage_mysql)
  echo "${out[*]}"
}

ensure_packages() {
  local miss; miss="$(missing_cmds)"
  [[ -z $miss ]] && return 0
  say "installing ${PACKAGES[*]} (missing: $miss)"
  apt-get update -q >"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed, see $LOG_DIR/apt.log"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" >>"$LOG_DIR/apt.log" 2>&1 ||
    die "apt-get install ${PACKAGES[*]} failed, see $LOG_DIR/apt.log"
  miss="$(missing_cmds)"
  [[ -z $miss ]] || die "still missing after install: $miss"
}

# ----------------------------------------------------------------- config ---
mem_mb() { awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo; }

db_password() {
  local f="$BASE/db_password"
  if [[ ! -s $f ]]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$f")
  fi
  cat "$f"
}

slurm_conf_text() {
  cat <<EOF
# Generated by rlvr_vocab slurm/local_cluster.sh -- local single-node cluster.
# Edits are overwritten on the next 'start'.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/slurmctld
SlurmdSpoolDir=$BASE/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ReturnToService=1
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,sched_min_interval=100000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=2048
MaxArraySize=201
EnforcePartLimits=ALL
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
KillWait=10
InactiveLimit=0
MinJobAge=120
MessageTimeout=20
SlurmctldTimeout=60
SlurmdTimeout=60
Waittime=0
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(mem_mb) State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES PriorityTier=1 PreemptMode=REQUEUE MaxTime=INFINITE State=UP
PartitionName=high Nodes=$HOST PriorityTier=10 PreemptMode=OFF MaxTime=INFINITE State=UP
EOF
}

dbd_conf_text() {
  cat <<EOF
# Generated by rlvr_vocab slurm/local_cluster.sh -- local single-node cluster.
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$RUN_DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$(db_password)
StorageLoc=$DB_NAME
EOF
}

# write_if_changed FILE MODE TEXT: returns 0 if the file was (re)written.
write_if_changed() {
  local f="$1" mode="$2" text="$3"
  if [[ -f $f ]] && [[ "$(cat "$f")" == "$text" ]]; then
    chmod "$mode" "$f"; return 1
  fi
  local tmp="$f.tmp.$$"
  (umask 077; printf '%s\n' "$text" >"$tmp")
  chmod "$mode" "$tmp"; chown root:root "$tmp"; mv -f "$tmp" "$f"
  return 0
}

prepare_dirs() {
  mkdir -p "$CONF_DIR" "$BASE/slurmctld" "$BASE/slurmd" "$LOG_DIR" "$RUN_DIR"
  chmod 755 "$BASE" "$LOG_DIR" "$RUN_DIR"
  # munge
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 755 /run/munge; chmod 700 /var/log/munge /var/lib/munge /etc/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    if command -v mungekey >/dev/null 2>&1; then
      runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key >/dev/null
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
  fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  # mariadb
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld; chmod 755 /run/mysqld
  # hostname must resolve
  if ! getent hosts "$HOST" >/dev/null 2>&1; then
    echo "127.0.0.1 $HOST" >>/etc/hosts
  fi
}

# ---------------------------------------------------------------- start ---
start_munged() {
  running munged && munge_ok && return 0
  if ! running munged; then
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock /run/munge/munged.pid
    runuser -u munge -- munged </dev/null >>"$LOG_DIR/munged.out" 2>&1 ||
      die "munged failed to start, see /var/log/munge/munged.log"
  fi
  wait_until 15 munge munge_ok || die "munge not answering, see /var/log/munge/munged.log"
}

start_mariadb() {
  if ! running mariadb; then
    if [[ ! -d /var/lib/mysql/mysql ]]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$LOG_DIR/mariadb.out" 2>&1 ||
        die "mariadb-install-db failed, see $LOG_DIR/mariadb.out"
    fi
    touch "$LOG_DIR/mariadb.err"; chown mysql:mysql "$LOG_DIR/mariadb.err"
    # Settings the Slurm docs recommend for slurmdbd, passed on the command line.
    setsid mysqld_safe --user=mysql --bind-address=127.0.0.1 \
      --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 \
      --log-error="$LOG_DIR/mariadb.err" </dev/null >>"$LOG_DIR/mariadb.out" 2>&1 &
    disown || true
  fi
  wait_until 60 mariadb db_ok || die "mariadb not answering, see $LOG_DIR/mariadb.err"
}

setup_db() {
  local pw; pw="$(db_password)"
  mariadb --protocol=socket -u root <<EOF >>"$LOG_DIR/mariadb.out" 2>&1 || die "could not create database $DB_NAME, see $LOG_DIR/mariadb.out"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$pw';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
  running slurmdbd || slurmdbd </dev/null >>"$LOG_DIR/slurmdbd.out" 2>&1 ||
    die "slurmdbd failed to start, see $LOG_DIR/slurmdbd.log"
  wait_until 60 slurmdbd dbd_ok || die "slurmdbd not answering, see $LOG_DIR/slurmdbd.log"
}

# Users that get an association (root, the sudo caller, regular login users).
wanted_users() {
  {
    echo root
    [[ -n ${SUDO_USER:-} ]] && echo "$SUDO_USER"
    getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 {print $1}'
    for u in ${RLVR_SLURM_USERS:-}; do echo "$u"; done
  } | sort -u
}

# Users with an association on our cluster (empty if the cluster is unknown).
assoc_users() { timeout 10 sacctmgr -n -P show assoc where cluster="$CLUSTER" format=user 2>/dev/null | sed '/^$/d' | sort -u; }
accounts_complete() {
  local have; have="$(assoc_users)" || return 1
  [[ -n $have ]] || return 1
  [[ -z "$(comm -23 <(wanted_users) <(echo "$have"))" ]]
}

# Returns 0 if the cluster had to be added (slurmctld must then (re)register).
setup_accounting() {
  local added=1 u
  if ! timeout 10 sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >>"$LOG_DIR/sacctmgr.out" 2>&1 || die "sacctmgr add cluster $CLUSTER failed"
    added=0
  fi
  if ! timeout 10 sacctmgr -n -P show account format=account 2>/dev/null | grep -qx "$ACCOUNT"; then
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="rlvr_vocab local" organization=local \
      >>"$LOG_DIR/sacctmgr.out" 2>&1 || die "sacctmgr add account $ACCOUNT failed"
  fi
  local have; have="$(assoc_users)"
  for u in $(comm -23 <(wanted_users) <(echo "$have")); do
    [[ $u == root ]] && continue
    sacctmgr -i add user "$u" account="$ACCOUNT" defaultaccount="$ACCOUNT" cluster="$CLUSTER" \
      >>"$LOG_DIR/sacctmgr.out" 2>&1 || die "sacctmgr add user $u failed"
  done
  # root: default account root (created with the cluster), plus the project account.
  if ! timeout 10 sacctmgr -n -P show assoc where cluster="$CLUSTER" user=root account="$ACCOUNT" format=user 2>/dev/null | grep -qx root; then
    sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >>"$LOG_DIR/sacctmgr.out" 2>&1 ||
      die "sacctmgr add user root account=$ACCOUNT failed"
  fi
  return $added
}

stop_daemon() {
  local name="$1" pid i
  pid="$(daemon_pid "$name")" || return 0
  if [[ $name == mariadb ]] && db_ok; then
    mysqladmin --protocol=socket shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  if [[ $name == mariadb ]]; then  # mysqld_safe must not respawn it
    local p; for p in $(pgrep -x mysqld_safe 2>/dev/null || true); do kill -TERM "$p" 2>/dev/null || true; done
  fi
  rm -f "$(pidfile_of "$name")" 2>/dev/null || true
}

start_slurmctld() {
  running slurmctld || slurmctld </dev/null >>"$LOG_DIR/slurmctld.out" 2>&1 ||
    die "slurmctld failed to start, see $LOG_DIR/slurmctld.log"
  wait_until 60 slurmctld ctld_ok || die "slurmctld not answering, see $LOG_DIR/slurmctld.log"
}

start_slurmd() {
  running slurmd || slurmd </dev/null >>"$LOG_DIR/slurmd.out" 2>&1 ||
    die "slurmd failed to start, see $LOG_DIR/slurmd.log"
}

# Resume the node if it is down/drained; wait until jobs can run on it.
ensure_node_up() {
  local end=$((SECONDS + WAIT_S)) s resumed=0
  while :; do
    s="$(node_state)"
    case "$s" in
      idle | mixed | allocated | completing) return 0 ;;
      down | drained | draining | drain | fail | failing | down\*  | drained\* | fail\*)
        if [[ $resumed -eq 0 ]] || ((SECONDS % 5 == 0)); then
          scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
          resumed=1
        fi ;;
    esac
    if ((SECONDS >= end)); then
      die "node $HOST not usable after ${WAIT_S}s (state: ${s:-unknown}); see $LOG_DIR/slurmd.log and $LOG_DIR/slurmctld.log"
    fi
    sleep 0.3
  done
}

all_daemons_running() {
  local d; for d in munged mariadb slurmdbd slurmctld slurmd; do running "$d" || return 1; done
}

up_line() { say "up (cluster $CLUSTER, partitions debug,high)"; }

cmd_start() {
  # Fast path: everything already up and answering, config unchanged.
  if all_daemons_running && node_usable && accounts_complete; then
    if ! is_root || { [[ "$(cat "$SLURM_CONF_FILE" 2>/dev/null)" == "$(slurm_conf_text)" ]] &&
                      [[ "$(cat "$DBD_CONF_FILE" 2>/dev/null)" == "$(dbd_conf_text)" ]]; }; then
      up_line; return 0
    fi
  fi
  if ! is_root; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      exec sudo -n --preserve-env=RLVR_SLURM_CLUSTER,RLVR_SLURM_DIR,RLVR_SLURM_ACCOUNT,RLVR_SLURM_WAIT,RLVR_SLURM_USERS \
        "$0" start
    fi
    local miss; miss="$(missing_cmds)"
    if [[ -n $miss ]]; then
      die "slurm packages missing ($miss) and not root: run 'sudo $0 start'" 2
    fi
    die "slurm daemons not all running/usable and not root: run 'sudo $0 start'" 2
  fi

  mkdir -p "$LOG_DIR"
  ensure_packages
  prepare_dirs
  local ctl_changed=0 dbd_changed=0
  write_if_changed "$SLURM_CONF_FILE" 644 "$(slurm_conf_text)" && ctl_changed=1
  write_if_changed "$DBD_CONF_FILE" 600 "$(dbd_conf_text)" && dbd_changed=1
  if [[ $dbd_changed -eq 1 ]]; then stop_daemon slurmdbd; fi
  if [[ $ctl_changed -eq 1 ]]; then stop_daemon slurmd; stop_daemon slurmctld; fi

  start_munged
  start_mariadb
  running slurmdbd || setup_db
  start_slurmdbd
  if setup_accounting && running slurmctld; then
    # The cluster was just created: slurmctld must register with slurmdbd again.
    stop_daemon slurmctld
  fi
  start_slurmctld
  start_slurmd
  ensure_node_up
  up_line
}

# stop [DAEMON...]: all daemons, or only those named (fault drills: 'stop slurmdbd', then 'start').
cmd_stop() {
  is_root || die "stop needs root: run 'sudo $0 stop'" 2
  local d all=(slurmd slurmctld slurmdbd mariadb munged)
  for d in "$@"; do [[ " ${all[*]} " == *" $d "* ]] || die "unknown daemon '$d' (one of: ${all[*]})" 2; done
  for d in "${@:-${all[@]}}"; do stop_daemon "$d"; done
  say "stopped ${*:-all}"
}

cmd_status() {
  local d ok=0 pid
  for d in munged mariadb slurmdbd slurmctld slurmd; do
    if pid="$(daemon_pid "$d")"; then
      printf '%-10s running (pid %s)\n' "$d" "$pid"
    else
      printf '%-10s stopped\n' "$d"; ok=1
    fi
  done
  if running slurmctld; then
    timeout 10 sinfo 2>&1 || ok=1
    node_usable || ok=1
  else
    echo "sinfo: slurmctld not running"
  fi
  return $ok
}

case "${1:-}" in
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop [DAEMON...]|status" >&2; exit 2 ;;
esac
