#!/usr/bin/env bash
# Bring up / stop / inspect a real Slurm cluster on this machine: one node, or two.
#
#   slurm/local_cluster.sh start    # install (if needed), configure, start one node; idempotent
#   slurm/local_cluster.sh start --nodes 2   # the same with a second node (see "Two nodes" below)
#   slurm/local_cluster.sh stop     # stop slurmd(s), slurmctld, slurmdbd, mariadb, munged; remove node 2
#   slurm/local_cluster.sh stop slurmdbd   # stop only the named daemons ('start' brings them back)
#   slurm/local_cluster.sh status   # daemon states + sinfo; exit 0 iff all up
#
# For development, CI and trying the framework on a laptop (Debian/Ubuntu,
# Slurm 22.05). Daemons are started directly (no systemd needed). Everything
# talks over 127.0.0.1 (two nodes: see below). Config: /etc/slurm/slurm.conf, /etc/slurm/slurmdbd.conf.
# State and logs: $RLVR_SLURM_DIR (default /var/lib/rlvr-local-slurm).
#
# Node 1 offers twice the machine's cores (SlurmdParameters=config_overrides): CPU jobs of the demo
# and the tests spend much of their time starting Python and waiting, so twice as many run at once
# keep the cores busy; memory (80% of RAM) stays a hard limit.
#
# The cluster mirrors what the framework meets on real clusters:
#   partitions debug (default, PriorityTier=1, preemptible by requeue) and
#   high (PriorityTier=10); preemption delivers the job's --signal user signal;
#   accounting through slurmdbd (sacct works) with association enforcement
#   (an unknown --account is rejected at submit time); MaxArraySize=201.
#
# Two nodes (start --nodes 2), for multi-node jobs (srun across nodes, torch.distributed):
# node 2 ($NODE2) is a second slurmd in a network namespace of its own, joined to the host by a
# veth pair ($NET.1 on the host = node 1 and the controller, $NET.2 = node 2), with its own
# hostname (UTS namespace), spool dir, pid file and log. It shares the file system, munge (its
# socket is a file) and the controller. Both nodes are in both partitions; node 1 keeps its CPUs,
# node 2 adds one, memory is shared half and half.
# Slurm and the nodes address each other by the veth addresses; /etc/hosts gets (marked) lines
# for both names, and both slurmds, so every job, see an /etc/hosts where the node names mean
# only those addresses (see node_hosts_text). Node 2 reaches the host, not the outside world.
# Plain 'start' goes back to one node; 'stop' removes node 2 entirely (namespace, veth, lines).
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
NODES=1                       # nodes to start: 'start --nodes 2' sets 2
NODE2=rlvr-node2              # node 2's node name, hostname and network namespace
NET="${RLVR_SLURM_NET:-10.211.0}"   # node 2's private /24 (.1 host side, .2 node 2)
ADDR1="$NET.1" ADDR2="$NET.2"
VETH=rlvr-veth0 VETH_PEER=rlvr-veth1  # host side, node 2 side (inside its namespace)
HOSTS_MARK="# rlvr-local-slurm"       # ends our /etc/hosts lines, so stop removes exactly those
NODE_HOSTS="$BASE/hosts"              # /etc/hosts as the nodes see it with two nodes
PATH="/usr/sbin:/sbin:$PATH"
export PATH SLURM_CONF="$SLURM_CONF_FILE"

# A start called from inside a job must not hand the job's SLURM_* to the daemons.
unset_slurm_env() { local v; for v in $(compgen -e | grep -E '^SLURM_' || true); do unset "$v"; done; export SLURM_CONF="$SLURM_CONF_FILE"; }
unset_slurm_env

say() { echo "local slurm: $*"; }
die() { echo "local slurm: $1" >&2; exit "${2:-1}"; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- daemons ---
# Daemon names: munged mariadb slurmdbd slurmctld slurmd (node 1) slurmd2 (node 2's slurmd).
# name -> pidfile(s), process name
pidfiles_of() {
  case "$1" in
    munged) echo /run/munge/munged.pid ;;
    mariadb) echo /run/mysqld/mysqld.pid ;;
    slurmdbd) echo "$RUN_DIR/slurmdbd.pid" ;;
    slurmctld) echo "$RUN_DIR/slurmctld.pid" ;;
    slurmd) echo "$RUN_DIR/slurmd.pid $RUN_DIR/slurmd-$HOST.pid" ;;  # one node; two (named by node, %n)
    slurmd2) echo "$RUN_DIR/slurmd-$NODE2.pid" ;;
  esac
}
comm_of() { case "$1" in mariadb) echo 'mariadbd|mysqld' ;; slurmd2) echo slurmd ;; *) echo "$1" ;; esac; }
daemons() { echo munged mariadb slurmdbd slurmctld slurmd; ((${1:-$NODES} < 2)) || echo slurmd2; }

# Both slurmds are called slurmd: without a pidfile, node 2's is the one in node 2's network
# namespace. (Only root can see a process's namespace; others take any slurmd for node 1's.)
netns_inode() { stat -L -c %i "$1" 2>/dev/null; }
in_daemon_netns() {
  local name="$1" pid="$2" ns
  [[ $name == slurmd || $name == slurmd2 ]] || return 0
  ns="$(netns_inode "/proc/$pid/ns/net")" || [[ $name == slurmd ]] || return 1
  [[ -n $ns ]] || return 0
  case "$name" in
    slurmd) [[ $ns == "$(netns_inode /proc/self/ns/net)" ]] ;;
    slurmd2) if [[ -e /run/netns/$NODE2 ]]; then [[ $ns == "$(netns_inode "/run/netns/$NODE2")" ]]
             else [[ $ns != "$(netns_inode /proc/self/ns/net)" ]]; fi ;;
  esac
}

# Print the daemon's pid if it runs (pidfile first, then by exact process name and namespace).
daemon_pid() {
  local name="$1" pf comm pid
  comm="$(comm_of "$name")"
  for pf in $(pidfiles_of "$name"); do
    [[ -r $pf ]] || continue
    pid="$(tr -dc 0-9 <"$pf" 2>/dev/null || true)"
    if [[ -n $pid && -r /proc/$pid/comm ]] && grep -qxE "$comm" "/proc/$pid/comm" 2>/dev/null; then
      echo "$pid"; return 0
    fi
  done
  for pid in $(pgrep -x "$comm" 2>/dev/null || true); do
    in_daemon_netns "$name" "$pid" && { echo "$pid"; return 0; }
  done
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
node_state() { timeout 10 sinfo -h -N -n "${1:-$HOST}" -o '%T' 2>/dev/null | head -n1; }
node_usable() {
  local s; s="$(node_state "${1:-$HOST}")"
  [[ $s =~ ^(idle|mixed|allocated|completing)$ ]]
}
node_names() { echo "$HOST"; ((${1:-$NODES} < 2)) || echo "$NODE2"; }
nodes_usable() { local n; for n in $(node_names "$@"); do node_usable "$n" || return 1; done; }
# Nodes in the written slurm.conf (what stop and status find running): 1 or 2.
conf_nodes() { if grep -q "^NodeName=$NODE2 " "$SLURM_CONF_FILE" 2>/dev/null; then echo 2; else echo 1; fi; }

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
  apt-get -o DPkg::Lock::Timeout=600 update -q >"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed, see $LOG_DIR/apt.log"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "${PACKAGES[@]}" >>"$LOG_DIR/apt.log" 2>&1 ||
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

# With two nodes: Slurm reaches node 1 and the controller at $ADDR1 (127.0.0.1 inside node 2's
# namespace is node 2 itself), node 2 at $ADDR2; each slurmd gets its own spool dir, pid file
# and log (%n = node name); the memory is shared half and half.
slurm_conf_text() {
  local addr=127.0.0.1 per_node="" mem nodes="$HOST" node_lines
  mem="$(mem_mb)"
  if ((NODES == 2)); then addr="$ADDR1" per_node=-%n mem=$((mem / 2)) nodes="$HOST,$NODE2"; fi
  node_lines="NodeName=$HOST NodeAddr=$addr CPUs=$(($(nproc) * 2)) RealMemory=$mem State=UNKNOWN"
  if ((NODES == 2)); then
    node_lines+=$'\n'"NodeName=$NODE2 NodeAddr=$ADDR2 CPUs=1 RealMemory=$mem State=UNKNOWN"
  fi
  local layout="single-node cluster"; ((NODES < 2)) || layout="two-node cluster (start --nodes 2)"
  cat <<EOF
# Generated by rlvr_vocab slurm/local_cluster.sh -- local $layout.
# Edits are overwritten on the next 'start'.
ClusterName=$CLUSTER
SlurmctldHost=$HOST($addr)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/slurmctld
SlurmdSpoolDir=$BASE/slurmd$per_node
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd$per_node.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd$per_node.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
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
AccountingStorageHost=$addr
AccountingStoragePort=6819
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
# Sampled every 5 s (default 30): short jobs get a MaxRSS too, which rlvr-vocab usage reports.
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
$node_lines
PartitionName=debug Nodes=$nodes Default=YES PriorityTier=1 PreemptMode=REQUEUE MaxTime=INFINITE State=UP
PartitionName=high Nodes=$nodes PriorityTier=10 PreemptMode=OFF MaxTime=INFINITE State=UP
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
  if ((NODES == 2)); then mkdir -p "$BASE/slurmd-$HOST" "$BASE/slurmd-$NODE2"; fi
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

# ----------------------------------------------------------------- node 2 ---
# Names a job may use for node 1: gethostname() (what gloo resolves) may be longer than hostname -s.
host_names() { local fq; fq="$(hostname)"; if [[ $fq == "$HOST" ]]; then echo "$HOST"; else echo "$HOST $fq"; fi; }

# Our /etc/hosts lines: both nodes at their veth addresses, marked so that stop removes exactly these.
hosts_lines() { printf '%s %s %s\n' "$ADDR1" "$(host_names)" "$HOSTS_MARK" "$ADDR2" "$NODE2" "$HOSTS_MARK"; }
without_our_hosts_lines() { grep -vF "$HOSTS_MARK" /etc/hosts || true; }

# Written in place, never renamed over: a rename would detach the nodes' views bound over
# /etc/hosts in the slurmds' mount namespaces (see on_node).
set_etc_hosts() { printf '%s\n' "$1" >/etc/hosts; }
hosts_lines_present() { [[ "$(grep -F "$HOSTS_MARK" /etc/hosts 2>/dev/null)" == "$(hosts_lines)" ]]; }
add_hosts_lines() { hosts_lines_present || set_etc_hosts "$(without_our_hosts_lines; hosts_lines)"; }
remove_hosts_lines() {
  grep -qF "$HOSTS_MARK" /etc/hosts 2>/dev/null || return 0
  set_etc_hosts "$(without_our_hosts_lines)"
}

# /etc/hosts as both nodes' processes see it: the node names only at their veth addresses. The
# host's own line for its name (e.g. "127.0.0.1 vm") is left out: getaddrinfo() sorts loopback
# first, so gloo on node 1 would bind and advertise 127.0.0.1, and inside node 2's namespace
# MASTER_ADDR=<node 1> would be node 2's own loopback.
node_hosts_text() {
  without_our_hosts_lines | awk -v names="$(host_names) $NODE2" '
    BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) drop[a[i]] = 1 }
    /^[[:space:]]*(#|$)/ { print; next }
    { line = $1; kept = 0; dropped = 0
      for (i = 2; i <= NF && $i !~ /^#/; i++) if ($i in drop) dropped = 1; else { line = line " " $i; kept++ }
      if (!dropped) print; else if (kept) print line }'
  hosts_lines
}
# Rewritten in place: the running slurmds see it through bind mounts of this very file.
node_hosts_current() { [[ -f $NODE_HOSTS && "$(cat "$NODE_HOSTS")" == "$(node_hosts_text)" ]]; }
update_node_hosts() { node_hosts_current || { printf '%s\n' "$(node_hosts_text)" >"$NODE_HOSTS"; chmod 644 "$NODE_HOSTS"; }; }

# Whether a slurmd (and so its jobs) still has the view bound: anyone renaming a new /etc/hosts
# into place detaches it. rebind_hosts_views binds it again in the running slurmds' namespaces.
has_hosts_view() { grep -q ' /etc/hosts ' "/proc/$1/mountinfo" 2>/dev/null; }
hosts_views_bound() {
  local d pid; for d in slurmd slurmd2; do pid="$(daemon_pid "$d")" && has_hosts_view "$pid" || return 1; done
}
rebind_hosts_views() {
  local d pid
  for d in slurmd slurmd2; do
    pid="$(daemon_pid "$d")" || continue
    has_hosts_view "$pid" || nsenter --mount="/proc/$pid/ns/mnt" mount --bind "$NODE_HOSTS" /etc/hosts ||
      die "could not bind $NODE_HOSTS over /etc/hosts for $d (pid $pid)"
  done
}

# The interface or route already using our /24, if any (we must not touch someone else's network).
net_clash() {
  { ip -4 -o addr show to "$NET.0/24" | awk '{print $2}'
    ip -4 route show root "$NET.0/24" | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}'
  } | grep -vx "$VETH" | head -n1 || true
}

# The host end is UP only while its peer is up; only root may look inside the namespace.
node2_net_ready() {
  [[ -e /run/netns/$NODE2 ]] && ip -o link show dev "$VETH" 2>/dev/null | grep -q ' state UP ' &&
    ip -4 -o addr show dev "$VETH" 2>/dev/null | grep -qF " $ADDR1/24 " &&
    { ! is_root || ip -n "$NODE2" -4 -o addr show dev "$VETH_PEER" up 2>/dev/null | grep -qF " $ADDR2/24 "; }
}

# What node 2 needs, checked before anything is changed: the tools and a free /24.
node2_preflight() {
  local c clash
  for c in ip unshare nsenter; do
    command -v "$c" >/dev/null 2>&1 || die "start --nodes 2 needs '$c' (packages iproute2, util-linux)"
  done
  clash="$(net_clash)"
  [[ -z $clash ]] || die "$NET.0/24 is already in use ($clash); choose a free /24 with RLVR_SLURM_NET=10.x.y"
}

# Namespace $NODE2 with lo up, joined to the host by the veth pair $VETH ($ADDR1) - $VETH_PEER ($ADDR2).
node2_net_up() {
  node2_net_ready && ip -n "$NODE2" link show lo up 2>/dev/null | grep -q UP && return 0
  [[ -e /run/netns/$NODE2 ]] || ip netns add "$NODE2" || die "ip netns add $NODE2 failed"
  # A host end without its peer in the namespace (namespace made anew) is useless: make the pair anew.
  if [[ -e /sys/class/net/$VETH ]] && ! ip -n "$NODE2" link show "$VETH_PEER" >/dev/null 2>&1; then
    ip link del "$VETH"
  fi
  [[ -e /sys/class/net/$VETH ]] || ip link add "$VETH" type veth peer name "$VETH_PEER" netns "$NODE2" ||
    die "could not create the veth pair $VETH/$VETH_PEER"
  # Flushed first: another RLVR_SLURM_NET before leaves its addresses on the pair.
  ip -4 addr flush dev "$VETH"
  ip addr add "$ADDR1/24" dev "$VETH"
  ip link set "$VETH" up
  ip -n "$NODE2" -4 addr flush dev "$VETH_PEER"
  ip -n "$NODE2" addr add "$ADDR2/24" dev "$VETH_PEER"
  ip -n "$NODE2" link set "$VETH_PEER" up
  ip -n "$NODE2" link set lo up
}

# Job steps and tasks left in the namespace would keep it, and so the veth, alive. TERM first
# (tasks may clean up), then KILL: slurmstepd ignores TERM.
kill_node2_procs() {
  [[ -e /run/netns/$NODE2 ]] || return 0
  local pids sig i
  for sig in TERM KILL; do
    for ((i = 0; i < 10; i++)); do
      pids="$(ip netns pids "$NODE2" 2>/dev/null | tr '\n' ' ')"
      [[ -n ${pids// /} ]] || return 0
      # shellcheck disable=SC2086
      ((i > 0)) || kill -"$sig" $pids 2>/dev/null || true
      sleep 0.2
    done
  done
}

# Everything of node 2: its slurmd, what runs in its namespace, the namespace, the veth, our hosts lines.
node2_down() {
  stop_daemon slurmd2
  kill_node2_procs
  if [[ -e /sys/class/net/$VETH ]]; then ip link del "$VETH" 2>/dev/null || true; fi
  if [[ -e /run/netns/$NODE2 ]]; then ip netns del "$NODE2" 2>/dev/null || true; fi
  remove_hosts_lines
  rm -f "$NODE_HOSTS"
}
node2_leftovers() {
  [[ -e /run/netns/$NODE2 || -e /sys/class/net/$VETH || -e $NODE_HOSTS ]] || grep -qF "$HOSTS_MARK" /etc/hosts 2>/dev/null
}
# Node 2's network and names are as 'start --nodes $NODES' wants them (checked by the fast path).
node2_as_wanted() {
  if ((NODES == 2)); then
    node2_net_ready && hosts_lines_present && node_hosts_current && hosts_views_bound
  else
    ! node2_leftovers
  fi
}

# on_node NODE CMD...: run CMD (a slurmd) as NODE's processes see the machine with two nodes:
# the nodes' /etc/hosts bound over /etc/hosts in a mount namespace of its own (slave: later mounts
# of the host still show), and for node 2 its network namespace and its own hostname (UTS
# namespace). Not 'ip netns exec': it remounts /sys, which hides the cgroup mounts slurmd needs.
on_node() {
  local node="$1"; shift
  local enter=(unshare --mount --propagation slave --) name=""
  if [[ $node == "$NODE2" ]]; then
    enter=(nsenter --net="/run/netns/$NODE2" unshare --mount --propagation slave --uts --); name="$NODE2"
  fi
  "${enter[@]}" sh -c 'mount --bind "$1" /etc/hosts && { [ -z "$2" ] || hostname "$2"; } && shift 2 && exec "$@"' \
    sh "$NODE_HOSTS" "$name" "$@"
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
  # shellcheck disable=SC2046
  rm -f $(pidfiles_of "$name") 2>/dev/null || true
}

start_slurmctld() {
  running slurmctld || slurmctld </dev/null >>"$LOG_DIR/slurmctld.out" 2>&1 ||
    die "slurmctld failed to start, see $LOG_DIR/slurmctld.log"
  wait_until 60 slurmctld ctld_ok || die "slurmctld not answering, see $LOG_DIR/slurmctld.log"
}

slurmd_log() { if ((NODES == 2)); then echo "$LOG_DIR/slurmd-$1.log"; else echo "$LOG_DIR/slurmd.log"; fi; }

# With two nodes node 1's slurmd too sees the nodes' /etc/hosts (see node_hosts_text).
start_slurmd() {
  running slurmd && return 0
  if ((NODES == 2)); then
    on_node "$HOST" slurmd -N "$HOST" </dev/null >>"$LOG_DIR/slurmd-$HOST.out" 2>&1
  else
    slurmd </dev/null >>"$LOG_DIR/slurmd.out" 2>&1
  fi || die "slurmd failed to start, see $(slurmd_log "$HOST")"
}

start_slurmd2() {
  running slurmd2 || on_node "$NODE2" slurmd -N "$NODE2" </dev/null >>"$LOG_DIR/slurmd-$NODE2.out" 2>&1 ||
    die "slurmd of $NODE2 failed to start, see $(slurmd_log "$NODE2") and $LOG_DIR/slurmd-$NODE2.out"
}

# Resume the node if it is down/drained; wait until jobs can run on it.
ensure_node_up() {
  local node="$1" end=$((SECONDS + WAIT_S)) s resumed=0
  while :; do
    s="$(node_state "$node")"
    case "$s" in
      idle | mixed | allocated | completing) return 0 ;;
      down | drained | draining | drain | fail | failing | down\*  | drained\* | fail\*)
        if [[ $resumed -eq 0 ]] || ((SECONDS % 5 == 0)); then
          scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
          resumed=1
        fi ;;
    esac
    if ((SECONDS >= end)); then
      die "node $node not usable after ${WAIT_S}s (state: ${s:-unknown}); see $(slurmd_log "$node") and $LOG_DIR/slurmctld.log"
    fi
    sleep 0.3
  done
}

all_daemons_running() {
  local d; for d in $(daemons); do running "$d" || return 1; done
}

up_line() {
  if ((NODES == 2)); then
    say "up (cluster $CLUSTER, nodes $HOST,$NODE2, partitions debug,high)"
  else
    say "up (cluster $CLUSTER, partitions debug,high)"
  fi
}

# start [--nodes 1|2]
parse_start_args() {
  while (($#)); do
    case "$1" in
      --nodes) [[ $# -ge 2 ]] || die "--nodes needs a value (1 or 2)" 2; NODES="$2"; shift 2 ;;
      --nodes=*) NODES="${1#*=}"; shift ;;
      *) die "unknown option '$1' (usage: $0 start [--nodes 1|2])" 2 ;;
    esac
  done
  [[ $NODES == 1 || $NODES == 2 ]] || die "--nodes must be 1 or 2, not '$NODES'" 2
}

# Inside a job on node 2 the hostname is node 2's: configuring from there would name the wrong node.
not_on_node2() { [[ $HOST != "$NODE2" ]] || die "this is $NODE2 (node 2): run $0 on the host, not in a job there" 2; }

cmd_start() {
  parse_start_args "$@"
  not_on_node2
  # Fast path: everything already up and answering, config unchanged.
  if all_daemons_running && nodes_usable && accounts_complete && node2_as_wanted; then
    if ! is_root || { [[ "$(cat "$SLURM_CONF_FILE" 2>/dev/null)" == "$(slurm_conf_text)" ]] &&
                      [[ "$(cat "$DBD_CONF_FILE" 2>/dev/null)" == "$(dbd_conf_text)" ]]; }; then
      up_line; return 0
    fi
  fi
  if ! is_root; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      exec sudo -n --preserve-env=RLVR_SLURM_CLUSTER,RLVR_SLURM_DIR,RLVR_SLURM_ACCOUNT,RLVR_SLURM_WAIT,RLVR_SLURM_USERS,RLVR_SLURM_NET \
        "$0" start --nodes "$NODES"
    fi
    local miss again="sudo $0 start"; miss="$(missing_cmds)"
    ((NODES < 2)) || again+=" --nodes 2"
    if [[ -n $miss ]]; then
      die "slurm packages missing ($miss) and not root: run '$again'" 2
    fi
    die "slurm daemons not all running/usable and not root: run '$again'" 2
  fi

  mkdir -p "$LOG_DIR"
  ensure_packages
  if ((NODES == 2)); then node2_preflight; fi
  prepare_dirs
  local ctl_changed=0 dbd_changed=0
  write_if_changed "$SLURM_CONF_FILE" 644 "$(slurm_conf_text)" && ctl_changed=1
  write_if_changed "$DBD_CONF_FILE" 600 "$(dbd_conf_text)" && dbd_changed=1
  if [[ $dbd_changed -eq 1 ]]; then stop_daemon slurmdbd; fi
  # A changed node set or address needs a restarted slurmctld (and slurmds that read the new paths).
  if [[ $ctl_changed -eq 1 ]]; then stop_daemon slurmd2; stop_daemon slurmd; stop_daemon slurmctld; fi
  if ((NODES == 2)); then
    node2_net_up            # before slurmctld: it is reached at $ADDR1
    add_hosts_lines
    update_node_hosts
    rebind_hosts_views      # slurmds kept running (config unchanged) may have lost their view
  elif node2_leftovers; then
    node2_down
  fi

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
  if ((NODES == 2)); then start_slurmd2; fi
  local node; for node in $(node_names); do ensure_node_up "$node"; done
  up_line
}

# stop [DAEMON...]: all daemons and node 2's namespace, or only the daemons named (fault drills:
# 'stop slurmdbd', or 'stop slurmd2' for node 2's slurmd, then 'start').
cmd_stop() {
  is_root || die "stop needs root: run 'sudo $0 stop'" 2
  not_on_node2
  local d all=(slurmd2 slurmd slurmctld slurmdbd mariadb munged)
  for d in "$@"; do [[ " ${all[*]} " == *" $d "* ]] || die "unknown daemon '$d' (one of: ${all[*]})" 2; done
  for d in "${@:-${all[@]}}"; do stop_daemon "$d"; done
  if (($# == 0)); then node2_down; fi
  say "stopped ${*:-all}"
}

# Reports the nodes of the written slurm.conf (one, or two after 'start --nodes 2').
cmd_status() {
  local d ok=0 pid n nodes; nodes="$(conf_nodes)"
  for d in $(daemons "$nodes"); do
    if pid="$(daemon_pid "$d")"; then
      printf '%-10s running (pid %s)\n' "$d" "$pid"
    else
      printf '%-10s stopped\n' "$d"; ok=1
    fi
  done
  if running slurmctld; then
    timeout 10 sinfo 2>&1 || ok=1
    if ((nodes == 2)); then
      for n in $(node_names 2); do printf 'node %-10s %s\n' "$n" "$(node_state "$n")"; done
    fi
    nodes_usable "$nodes" || ok=1
  else
    echo "sinfo: slurmctld not running"
  fi
  return $ok
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 start [--nodes 1|2]|stop [DAEMON...]|status" >&2; exit 2 ;;
esac
