#!/usr/bin/env bash
# A PostgreSQL server entirely inside one folder, on 127.0.0.1: for trying the scale-out shape
# locally, and for the tests and benchmarks.
#
# Usage:
#   scripts/engines/postgres.sh start DIR          # makes a server in DIR (empty or new), or
#                                                  # restarts the one made there before
#   scripts/engines/postgres.sh stop DIR           # stops it (fast shutdown) and waits for it
#   scripts/engines/postgres.sh stop DIR --wipe    # ... then removes DIR
#
# `start` prints the connection facts as KEY=VALUE lines on stdout:
#   DATABASE_URL=postgres://postgres@127.0.0.1:PORT/ros2_upload
#   PGHOST=127.0.0.1  PGPORT=PORT  PGUSER=postgres  PGDATABASE=ros2_upload   (one per line)
# so `set -a; eval "$(scripts/engines/postgres.sh start /tmp/pg)"; set +a` exports them and
# `psql` then connects. Errors go to stderr; the server's log is DIR/log/postgres.log.
#
# Needs PostgreSQL's server programs (initdb, pg_ctl), found on PATH or in Debian's
# /usr/lib/postgresql/VERSION/bin: apt-get install -y --no-install-recommends postgresql
# (and node, which picks the port). Run as root, the server runs as the `postgres` user (it
# refuses root), so DIR is made reachable for that user; run as anyone else, it runs as you.
#
# Trust authentication on 127.0.0.1 and a socket inside DIR only: a throwaway server for one
# machine, never one to expose. Durability settings are PostgreSQL's defaults, so benchmarks
# measure what a real deployment pays.
set -euo pipefail

readonly ME=postgres
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly INSTALL_HINT='apt-get update && apt-get install -y --no-install-recommends postgresql'
readonly DATABASE=ros2_upload
readonly DB_USER=postgres

die() { printf '%s: %s\n' "$ME" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$ME" "$*" >&2; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Debian installs the server programs off PATH, one folder per major version: take the newest.
find_bin() {
  local pg_ctl
  pg_ctl=$(command -v pg_ctl 2>/dev/null || true)
  if [ -n "$pg_ctl" ]; then
    bin=$(dirname "$(readlink -f "$pg_ctl")")
  else
    bin=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null \
      | sort -V | tail -n 1 | xargs -r dirname || true)
  fi
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ]; then
    die "missing PostgreSQL's server programs (initdb, pg_ctl); install them with: $INSTALL_HINT"
  fi
  command -v node >/dev/null 2>&1 || die "missing node (Node.js >= 20), which picks a free port"
}

# Runs a server program as the user the server runs as.
as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() { node "$HERE/free-port.mjs"; }

# The socket file is DIR/socket/.s.PGSQL.PORT and Unix socket paths hold at most 107 bytes.
check_socket_path() {
  [ "$((${#dir} + 25))" -le 107 ] \
    || die "$dir is too long a path for the server's Unix socket (at most 82 characters)"
}

# The first folder on the way to DIR that the postgres user may not pass through.
closed_parent() {
  local path='' part
  IFS=/ read -ra parts <<<"${dir#/}"
  for part in "${parts[@]}"; do
    path+=/$part
    as_server_user test -x "$path" || { printf '%s' "$path"; return; }
  done
  printf '%s' "$dir"
}

prepare_folder() {
  mkdir -p "$dir/data" "$dir/socket" "$dir/log"
  chmod 700 "$dir/data"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "there is no postgres user; install the server with: $INSTALL_HINT"
    chown postgres: "$dir/data" "$dir/socket" "$dir/log"
    # The server only needs to pass through DIR to reach its own subfolders.
    chmod o+x "$dir"
    as_server_user test -x "$dir/data" || die "the postgres user cannot reach $dir: $(closed_parent) is" \
      "closed to it (chmod o+x it, or use a folder whose parents are open, like one made by mktemp -d" \
      "then chmod 711)"
  fi
}

start_server() { # $1 = port; returns 3 when the port was taken
  local log=$dir/log/postgres.log
  if as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$log" -w -t 60 \
    -o "-p $1 -c listen_addresses=127.0.0.1 -k '$dir/socket'" start >>"$dir/log/setup.log" 2>&1; then
    return 0
  fi
  tail -n 20 "$log" 2>/dev/null | grep -q 'could not bind' && return 3
  say "the server did not start; last lines of $log:"
  tail -n 15 "$log" >&2 || true
  exit 1
}

start() {
  find_bin
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  check_socket_path
  if [ -e "$dir/data/postmaster.pid" ] && as_server_user "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    die "a server is already running in $dir; stop it first"
  fi
  local fresh=false port attempt status
  if [ ! -e "$dir/data/PG_VERSION" ]; then
    [ -z "$(ls -A "$dir")" ] || die "$dir is neither empty nor a server made by this script"
    fresh=true
  elif [ ! -e "$dir/pg.env" ]; then
    die "the first start of the server in $dir did not finish; remove it ($0 stop $dir --wipe) and start again"
  fi
  prepare_folder
  if $fresh; then
    # --no-sync: a throwaway cluster need not wait for its template files to reach the disk.
    as_server_user "$bin/initdb" -D "$dir/data" --auth=trust --username="$DB_USER" \
      --encoding=UTF8 --locale=C --no-sync --no-instructions >>"$dir/log/setup.log" 2>&1 \
      || { tail -n 15 "$dir/log/setup.log" >&2; die "initdb failed"; }
  fi
  # A restart keeps its port when it can, so that clients configured before still connect.
  port=$(sed -n 's/^PGPORT=//p' "$dir/pg.env" 2>/dev/null || true)
  for attempt in 1 2 3; do
    [ -n "$port" ] || port=$(free_port)
    status=0
    start_server "$port" || status=$?
    [ "$status" -eq 3 ] || break
    [ "$attempt" -lt 3 ] || die "port $port was taken three times in a row"
    say "port $port was taken; drawing another"
    port=''
  done
  if $fresh; then
    as_server_user "$bin/createdb" -h "$dir/socket" -p "$port" -U "$DB_USER" "$DATABASE" \
      >>"$dir/log/setup.log" 2>&1 || {
      tail -n 15 "$dir/log/setup.log" >&2
      as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
      die "createdb failed"
    }
  fi
  cat >"$dir/pg.env" <<EOF
DATABASE_URL=postgres://$DB_USER@127.0.0.1:$port/$DATABASE
PGHOST=127.0.0.1
PGPORT=$port
PGUSER=$DB_USER
PGDATABASE=$DATABASE
EOF
  cat "$dir/pg.env"
}

stop() {
  if [ ! -d "$dir" ]; then
    [ "$wipe" = true ] && return 0
    die "$dir does not exist"
  fi
  dir=$(cd "$dir" && pwd)
  if [ -e "$dir/data/postmaster.pid" ]; then
    find_bin
    # Fast shutdown: open sessions are ended, committed data is kept. pg_ctl waits until the
    # server and all its processes are gone; it fails only when none was running.
    if ! as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      && as_server_user "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      die "the server in $dir did not stop within 60 s"
    fi
  fi
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
