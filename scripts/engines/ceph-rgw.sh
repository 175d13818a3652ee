#!/usr/bin/env bash
# A single-node Ceph cluster with a RADOS Gateway (the S3 API on 127.0.0.1), entirely inside one
# folder: for trying the scale-out shape locally, and for the tests and benchmarks.
#
# Usage (as root):
#   scripts/engines/ceph-rgw.sh start DIR          # makes a cluster in DIR (empty or new), or
#                                                  # restarts the one made there before
#   scripts/engines/ceph-rgw.sh stop DIR           # stops every daemon of DIR and waits for them
#   scripts/engines/ceph-rgw.sh stop DIR --wipe    # ... then removes DIR
#
# `start` prints the connection facts as KEY=VALUE lines on stdout:
#   S3_ENDPOINT=http://127.0.0.1:PORT
#   S3_ACCESS_KEY_ID=...
#   S3_SECRET_ACCESS_KEY=...
#   S3_REGION=us-east-1
#   S3_FORCE_PATH_STYLE=true
# so `set -a; eval "$(scripts/engines/ceph-rgw.sh start /tmp/rgw)"; set +a` exports them.
# Progress and errors go to stderr; the daemons' logs are in DIR/log. Data survives a stop and
# a restart. Clients must use path-style addressing, and ask for checksums only when the
# operation requires them (AWS SDK v3: requestChecksumCalculation and
# responseChecksumValidation 'WHEN_REQUIRED'; otherwise a streamed PutObject gets 411).
#
# Needs Debian's packages: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw
# (and node, which picks the ports). CEPH_OSD_SIZE_GB sets the size of the OSD's sparse block
# file (default 20; it takes disk space only as data is written).
#
# Shape, and why: one monitor (msgr2 only), one bluestore OSD on a sparse file (memstore loses
# its data on restart), no mgr (S3 does not need one; without it `ceph osd df` hangs), auth none
# (loopback only; clients must still ask for the `crc secure` modes, or radosgw loops on auth
# error -13), pools of size 1 with 8 PGs made before radosgw starts (it makes them lazily, which
# costs the first requests 2-3 s each). Ports are drawn free, so two clusters on one machine do
# not collide, and nothing is written outside DIR (no /etc/ceph, /var/lib/ceph, /var/log/ceph).
set -euo pipefail

readonly ME=ceph-rgw
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly INSTALL_HINT='apt-get update && apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw'
readonly RGW_NAME=client.rgw.local
readonly OSD_ID=0

die() { printf '%s: %s\n' "$ME" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$ME" "$*" >&2; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

require_tools() {
  local tool missing=()
  for tool in ceph ceph-mon ceph-osd monmaptool radosgw radosgw-admin; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -eq 0 ] || die "missing ${missing[*]}; install Ceph with: $INSTALL_HINT"
  command -v node >/dev/null 2>&1 || die "missing node (Node.js >= 20), which picks free ports"
  [ "$(id -u)" -eq 0 ] || die "run as root: the OSD needs it to open and lock its block file"
}

free_port() { node "$HERE/free-port.mjs"; }

random_token() { # $1 = length, $2 = tr character set
  local out=''
  while [ "${#out}" -lt "$1" ]; do
    out+=$(head -c 256 /dev/urandom | LC_ALL=C tr -dc "$2")
  done
  printf '%s' "${out:0:$1}"
}

write_conf() { # $1 = fsid, $2 = monitor port, $3 = gateway port
  cat >"$conf" <<EOF
[global]
fsid = $1
mon_host = v2:127.0.0.1:$2
mon_initial_members = a
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc secure
ms_client_mode = crc secure
keyring = $dir/keyring
run_dir = $dir/run
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$cluster-\$name.log
mon_cluster_log_file = $dir/log/\$cluster.log
crash_dir = $dir/crash
log_to_stderr = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
# Map changes (a pool made, the OSD up) are proposed at once rather than gathered for 1 s.
paxos_propose_interval = 0.05

[mon]
mon_data = $dir/mon/\$cluster-\$id
# A throwaway cluster: the monitor must not shut itself down because the machine's disk is
# more than 95% full (its default), the OSD fails on its own when writes really fail.
mon_data_avail_crit = 0
mon_data_avail_warn = 1

[osd]
osd_data = $dir/osd/\$cluster-\$id
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = $((${CEPH_OSD_SIZE_GB:-20} * 1024 * 1024 * 1024))
bluestore_fsck_on_mkfs = false
osd_memory_target = 1073741824

[$RGW_NAME]
rgw_frontends = beast endpoint=127.0.0.1:$3
rgw_data = $dir/rgw
EOF
}

conf_value() { # $1 = key, as written by write_conf
  sed -n "s/^$1 = //p" "$conf" | head -n 1
}

# Every process started with this folder's ceph.conf: the daemons, and any CLI call left
# hanging. Read from /proc: a daemon killed with -9 leaves a stale pid file.
cluster_pids() {
  local proc arg
  for proc in /proc/[0-9]*; do
    [ "${proc#/proc/}" = "$$" ] && continue
    while IFS= read -r -d '' arg; do
      if [ "$arg" = "$conf" ]; then printf '%s\n' "${proc#/proc/}"; break; fi
    done 2>/dev/null <"$proc/cmdline" || true
  done
}

# An exited process that its parent has not reaped yet (init reaps Ceph's daemons about 2 s
# after they exit) holds nothing any more, so it counts as gone.
running() { # $1 = pid
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

daemon_pid() { # $1 = program name (radosgw, ceph-mon, ceph-osd)
  local pid
  for pid in $(cluster_pids); do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && running "$pid"; then
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

# Whether process $1 itself listens on 127.0.0.1:$2: an answer on that port could come from
# another cluster's gateway that took it first.
listens_on() { # $1 = pid, $2 = port
  local inode
  inode=$(awk -v local_address="0100007F:$(printf '%04X' "$2")" \
    '$2 == local_address && $4 == "0A" { print $10 }' /proc/net/tcp)
  [ -n "$inode" ] && find "/proc/$1/fd" -lname "socket:\[$inode\]" 2>/dev/null | grep -q .
}

terminate() { # pids: TERM, then KILL what still runs 30 s later; returns once all are gone
  local pid deadline
  [ "$#" -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  deadline=$((SECONDS + 30))
  for pid in "$@"; do
    while running "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
  done
  for pid in "$@"; do
    if running "$pid"; then
      say "pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ignored TERM for 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while running "$pid"; do sleep 0.05; done
    fi
  done
}

# The monitor goes last: an OSD stopping tells it that it is going down and, with the monitor
# already gone, waits 5 s (osd_mon_shutdown_timeout) for an answer.
stop_cluster() {
  local pid comm clients=() osds=() monitors=()
  for pid in $(cluster_pids); do
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    case "$comm" in
      ceph-mon) monitors+=("$pid") ;;
      ceph-osd) osds+=("$pid") ;;
      *) clients+=("$pid") ;;
    esac
  done
  terminate "${clients[@]}"
  terminate "${osds[@]}"
  terminate "${monitors[@]}"
}

# Says what failed and where its reasons are, stops what was started, exits non-zero.
fail() { # $1 = message, $2 = log file to show
  say "$1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then
    say "last lines of $2:"
    tail -n 15 "$2" >&2
  fi
  stop_cluster
  exit 1
}

ceph_cli() { timeout 90 ceph -c "$conf" --connect-timeout 60 "$@"; }

# Python with the rados binding that the ceph CLI itself uses (its own interpreter, which
# need not be the first python3 on PATH).
ceph_python() { "$(sed -n '1s/^#! *//p' "$(command -v ceph)")" "$@"; }

# Returns 3 when the port was taken, so that a new cluster can draw another.
start_monitor() {
  local log=$dir/log/ceph-mon.a.log
  if [ ! -d "$dir/mon/ceph-a" ]; then
    monmaptool --create --fsid "$(conf_value fsid)" --addv a "[$(conf_value mon_host)]" \
      "$dir/monmap" >>"$dir/log/setup.log" 2>&1 || fail "monmaptool failed" "$dir/log/setup.log"
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >>"$dir/log/setup.log" 2>&1 \
      || fail "the monitor's mkfs failed" "$dir/log/setup.log"
  fi
  if ! ceph-mon -c "$conf" -i a </dev/null >>"$dir/log/daemons.out" 2>&1; then
    grep -q 'Address already in use' "$log" 2>/dev/null && return 3
    fail "the monitor did not start" "$log"
  fi
  ceph_cli quorum_status >/dev/null 2>>"$dir/log/setup.log" \
    || fail "the monitor did not answer" "$log"
}

start_osd() {
  local log=$dir/log/ceph-osd.$OSD_ID.log uuid deadline
  if [ ! -e "$dir/osd/ceph-$OSD_ID/ready" ]; then
    uuid=$(cat /proc/sys/kernel/random/uuid)
    [ "$(ceph_cli osd new "$uuid" 2>>"$dir/log/setup.log")" = "$OSD_ID" ] \
      || fail "the monitor did not allocate osd.$OSD_ID" "$dir/log/setup.log"
    mkdir -p "$dir/osd/ceph-$OSD_ID"
    # Bluestore makes its sparse block file itself: pointing bluestore_block_path at a file in
    # this folder instead makes mkfs fail with "Too many levels of symbolic links".
    ceph-osd -c "$conf" -i "$OSD_ID" --mkfs --osd-uuid "$uuid" >>"$dir/log/setup.log" 2>&1 \
      || fail "the OSD's mkfs failed" "$log"
  fi
  ceph-osd -c "$conf" -i "$OSD_ID" </dev/null >>"$dir/log/daemons.out" 2>&1 \
    || fail "the OSD did not start" "$log"
  deadline=$((SECONDS + 120))
  until ceph_cli osd dump 2>/dev/null | grep -q "^osd\.$OSD_ID up "; do
    [ "$SECONDS" -lt "$deadline" ] || fail "osd.$OSD_ID was not up after 120 s" "$log"
    sleep 0.2
  done
}

# From one process: a ceph CLI call costs a second of Python start-up, 14 of them on 2 cores
# cost more than the pools themselves.
create_pools() {
  ceph_python - "$conf" >>"$dir/log/setup.log" 2>&1 <<'PY' \
    || fail "making the gateway's pools failed" "$dir/log/setup.log"
import json, sys, rados
POOLS = ['.rgw.root', 'default.rgw.control', 'default.rgw.meta', 'default.rgw.log',
         'default.rgw.buckets.index', 'default.rgw.buckets.data', 'default.rgw.buckets.non-ec']
with rados.Rados(conffile=sys.argv[1]) as cluster:
    for pool in POOLS:
        for command in ({'prefix': 'osd pool create', 'pool': pool, 'pg_num': 8, 'pgp_num': 8},
                        {'prefix': 'osd pool application enable', 'pool': pool, 'app': 'rgw'}):
            ret, _, message = cluster.mon_command(json.dumps(command), b'', timeout=60)
            print(command['prefix'], pool, ret, message)
            if ret != 0:
                sys.exit(1)
PY
}

create_user() {
  local access secret
  access=$(random_token 20 'A-Z0-9')
  secret=$(random_token 40 'A-Za-z0-9')
  timeout 120 radosgw-admin -c "$conf" user create --uid=scale-out --display-name='scale-out' \
    --access-key="$access" --secret="$secret" >>"$dir/log/setup.log" 2>&1 \
    || fail "radosgw-admin user create failed" "$dir/log/setup.log"
  cat >"$dir/s3.env" <<EOF
S3_ACCESS_KEY_ID=$access
S3_SECRET_ACCESS_KEY=$secret
S3_REGION=us-east-1
S3_FORCE_PATH_STYLE=true
EOF
}

# An anonymous GET / answers 200 (an empty bucket list) once the gateway serves requests.
gateway_answers() { # $1 = port
  local status
  status=$(
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || exit 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    head -n 1 <&3
  ) || return 1
  [[ "$status" == *" 200 "* ]]
}

# Returns 3 when the port was taken, so that a new cluster can draw another.
start_gateway() {
  local log=$dir/log/ceph-$RGW_NAME.log port deadline pid
  port=$(conf_value rgw_frontends | sed 's/.*://')
  radosgw -c "$conf" -n "$RGW_NAME" </dev/null >>"$dir/log/daemons.out" 2>&1 \
    || fail "radosgw did not start" "$log"
  deadline=$((SECONDS + 120))
  until pid=$(daemon_pid radosgw) && listens_on "$pid" "$port" && gateway_answers "$port"; do
    if ! daemon_pid radosgw >/dev/null; then
      grep -q "failed to bind address 127.0.0.1:$port" "$log" 2>/dev/null && return 3
      fail "radosgw exited" "$log"
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "radosgw did not answer on port $port within 120 s" "$log"
    sleep 0.2
  done
}

start() {
  require_tools
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  conf=$dir/ceph.conf
  [ -z "$(cluster_pids)" ] || die "a cluster is already running in $dir; stop it first"
  local fresh=false attempt status
  if [ ! -e "$conf" ]; then
    [ -z "$(ls -A "$dir")" ] || die "$dir is neither empty nor a cluster made by this script"
    fresh=true
    mkdir -p "$dir"/{run,log,mon,osd,crash,rgw}
    : >"$dir/keyring"
    write_conf "$(cat /proc/sys/kernel/random/uuid)" "$(free_port)" "$(free_port)"
  elif [ ! -e "$dir/s3.env" ]; then
    die "the first start of the cluster in $dir did not finish; remove it ($0 stop $dir --wipe) and start again"
  fi
  for attempt in 1 2 3; do
    status=0
    start_monitor || status=$?
    [ "$status" -eq 3 ] || break
    if ! $fresh || [ "$attempt" -eq 3 ]; then fail "the monitor's port ($(conf_value mon_host)) is taken"; fi
    say "the monitor's port was taken; drawing another"
    rm -rf "$dir/mon/ceph-a" "$dir/monmap"
    sed -i "s/^mon_host = .*/mon_host = v2:127.0.0.1:$(free_port)/" "$conf"
  done
  start_osd
  if $fresh; then
    create_pools
    create_user
  fi
  for attempt in 1 2 3; do
    status=0
    start_gateway || status=$?
    [ "$status" -eq 3 ] || break
    if ! $fresh || [ "$attempt" -eq 3 ]; then fail "the gateway's port ($(conf_value rgw_frontends)) is taken"; fi
    say "the gateway's port was taken; drawing another"
    sed -i "s/^rgw_frontends = .*/rgw_frontends = beast endpoint=127.0.0.1:$(free_port)/" "$conf"
  done
  printf 'S3_ENDPOINT=http://127.0.0.1:%s\n' "$(conf_value rgw_frontends | sed 's/.*://')"
  cat "$dir/s3.env"
}

stop() {
  if [ ! -d "$dir" ]; then
    [ "$wipe" = true ] && return 0
    die "$dir does not exist"
  fi
  dir=$(cd "$dir" && pwd)
  conf=$dir/ceph.conf
  stop_cluster
  if [ "$wipe" = true ]; then rm -rf "$dir"; fi
}

cmd=${1:-}
dir=${2:-}
wipe=false
case "${3:-}" in
  '') ;;
  --wipe) [ "$cmd" = stop ] || usage; wipe=true ;;
  *) usage ;;
esac
[ -n "$dir" ] || usage
case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
