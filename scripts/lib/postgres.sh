#!/usr/bin/env bash
# scripts/lib/postgres.sh — manage a private PostgreSQL cluster for Aviary.
#
# Sourced by scripts/serve and scripts/test (not run directly). It gives every
# checkout its own throw-away cluster, so the project never depends on (or
# disturbs) a system PostgreSQL, and works the same for a developer (non-root)
# and for CI (root, fresh clone, no stdin).
#
# Public functions:
#   aviary_pg_ensure_installed   install PostgreSQL if needed, set AVIARY_PG_BINDIR
#   aviary_pg_start              create (first time) and start the cluster, or reuse
#                                one that is already running
#   aviary_pg_create_db NAME     create database NAME owned by role `aviary` (idempotent)
#   aviary_pg_url NAME           print postgres://aviary:<pw>@127.0.0.1:<port>/NAME
#   aviary_pg_stop_if_started    stop the cluster only if aviary_pg_start started it
#                                (safe to call from an EXIT trap, any number of times)
#   aviary_pg_start_replica, aviary_pg_stop_replica   a streaming replica for the tests
#                                (scripts/lib/postgres-replica.sh)
#
# Environment:
#   AVIARY_PG_PORT     TCP port of the private cluster (default 54329)
#   AVIARY_PG_BINDIR   optional: directory holding initdb/pg_ctl/psql (skips the search)
#
# Where the data lives (see _aviary_pg_resolve_layout):
#   <repo>/.aviary/pgdata            the data directory, or a symlink to
#   /var/lib/aviary/<sha>/pgdata     when running as root from a checkout the
#                                    `postgres` user cannot reach (e.g. under /root)
#   <repo>/.aviary/pg_password       password of role `aviary` (mode 600)
set -euo pipefail

# Sourcing twice must not reset the "did we start it" bookkeeping.
if [[ -n "${_AVIARY_PG_LIB_LOADED:-}" ]]; then
    return 0
fi
_AVIARY_PG_LIB_LOADED=1

# The repo root is the parent of scripts/; this file is scripts/lib/postgres.sh.
# Physical path (pwd -P) so the fallback directory's hash is stable across symlinks.
AVIARY_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
AVIARY_STATE_DIR="$AVIARY_REPO_ROOT/.aviary"
AVIARY_PG_PORT="${AVIARY_PG_PORT:-54329}"
AVIARY_PG_ROLE="aviary"
AVIARY_PG_PASSWORD_FILE="$AVIARY_STATE_DIR/pg_password"

# Where Debian puts the server binaries (one directory per major version), and
# where root-owned checkouts keep their data. Variables only so tests can point
# them elsewhere.
: "${_AVIARY_PG_DEBIAN_LIB:=/usr/lib/postgresql}"
: "${_AVIARY_PG_FALLBACK_ROOT:=/var/lib/aviary}"

# Filled in by the functions below.
AVIARY_PG_BINDIR="${AVIARY_PG_BINDIR:-}"
AVIARY_PG_DATA=""          # data directory (real path, never the symlink)
AVIARY_PG_RUNDIR=""        # owned by the cluster's OS user: unix socket + server log
AVIARY_PG_LOG=""           # server log file (pg_ctl -l)
AVIARY_PG_OS_USER=""       # OS user that runs the server; also the DB superuser name
AVIARY_PG_ACTIVE_PORT=""   # port the cluster actually listens on
AVIARY_PG_STARTED_BY_US=0  # 1 only if aviary_pg_start in THIS shell ran `pg_ctl start`
_AVIARY_PG_LOCK_FD=""

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

# Messages go to stderr so functions that print a value (aviary_pg_url) stay clean.
_aviary_log() { printf 'aviary: %s\n' "$*" >&2; }
_aviary_die() { printf 'aviary: error: %s\n' "$*" >&2; exit 1; }

# Hex string from the kernel RNG; od is in coreutils, so this needs no openssl.
_aviary_random_hex() {
    od -An -vtx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Run a command with root privileges (for apt-get): directly when root, through
# sudo otherwise; fail clearly when neither is possible.
_aviary_as_root() {
    if (( EUID == 0 )); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        _aviary_die "need root to run '$*' (not root and sudo is missing); install PostgreSQL yourself or set AVIARY_PG_BINDIR"
    fi
}

# Run a command as OS user $1. PostgreSQL refuses to run as root, so when we are
# root every initdb/pg_ctl/psql call goes through the cluster's owner. `cd /`
# first: the caller's cwd (e.g. /root/...) may be unreadable for that user.
_aviary_run_as() {
    local user="$1"; shift
    if (( EUID != 0 )); then
        [[ "$user" == "$(id -un)" ]] || _aviary_die "cannot run '$1' as '$user' without root"
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u "$user" -- "$@")
    else
        local cmd
        printf -v cmd '%q ' "$@"
        (cd / && su "$user" -s /bin/bash -c "$cmd")
    fi
}

_aviary_pg_as_owner() { _aviary_run_as "$AVIARY_PG_OS_USER" "$@"; }

# Write stdin to file $1 as the cluster owner, so files inside the data
# directory keep the owner and mode PostgreSQL expects.
_aviary_pg_write_as_owner() {
    _aviary_pg_as_owner sh -c 'umask 077 && cat > "$1"' sh "$1"
}

# Create directory $1 owned by the cluster owner with mode 700 (PostgreSQL
# insists on 700/750 for its data directory; the socket dir needs no more).
_aviary_pg_mkdir_owned() {
    mkdir -p "$1"
    if (( EUID == 0 )); then
        chown "$AVIARY_PG_OS_USER:" "$1"
    fi
    chmod 700 "$1"
}

# True if something already accepts TCP connections on 127.0.0.1:$1.
# Uses bash's /dev/tcp so it needs neither ss nor netstat on a minimal system.
_aviary_port_in_use() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------

# Print the bin directory of the highest installed PostgreSQL (or of major
# version $1 when given). Debian keeps initdb/pg_ctl out of PATH, under
# /usr/lib/postgresql/<major>/bin; other systems get a PATH fallback.
_aviary_pg_find_bindir() {
    local want="${1:-}" d best=""
    if [[ -n "$want" ]]; then
        d="$_AVIARY_PG_DEBIAN_LIB/$want/bin"
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/psql" ]] || return 1
        printf '%s\n' "$d"
        return 0
    fi
    while IFS= read -r d; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/psql" ]]; then
            best="$d"   # list is sorted by version, so the last hit is the highest
        fi
    done < <(printf '%s\n' "$_AVIARY_PG_DEBIAN_LIB"/*/bin | sort -V)
    if [[ -z "$best" ]] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        best="$(dirname "$(command -v pg_ctl)")"
        [[ -x "$best/initdb" && -x "$best/psql" ]] || best=""
    fi
    [[ -n "$best" ]] || return 1
    printf '%s\n' "$best"
}

# Major version of the server binaries in $1 ("15" from "pg_ctl (PostgreSQL) 15.13").
_aviary_pg_bindir_major() {
    "$1/pg_ctl" --version | sed -n 's/.*PostgreSQL) \([0-9][0-9]*\).*/\1/p'
}

aviary_pg_ensure_installed() {
    # An explicit AVIARY_PG_BINDIR wins (e.g. a non-Debian install).
    if [[ -n "$AVIARY_PG_BINDIR" ]]; then
        [[ -x "$AVIARY_PG_BINDIR/initdb" && -x "$AVIARY_PG_BINDIR/pg_ctl" && -x "$AVIARY_PG_BINDIR/psql" ]] \
            || _aviary_die "AVIARY_PG_BINDIR=$AVIARY_PG_BINDIR does not contain initdb, pg_ctl and psql"
        return 0
    fi
    if AVIARY_PG_BINDIR="$(_aviary_pg_find_bindir)"; then
        return 0
    fi

    # Fresh machine: the project's own files must install what it needs.
    command -v apt-get >/dev/null 2>&1 \
        || _aviary_die "PostgreSQL (initdb/pg_ctl) not found and apt-get is unavailable; install PostgreSQL or set AVIARY_PG_BINDIR"
    _aviary_log "PostgreSQL not found; installing it with apt-get"
    # noninteractive: CI runs with no stdin, so debconf must never prompt.
    # --no-install-recommends: skip the MTA (exim4), sysstat etc. that the
    # package recommends; the server and client come in as dependencies.
    _aviary_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    _aviary_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    AVIARY_PG_BINDIR="$(_aviary_pg_find_bindir)" \
        || _aviary_die "installed the postgresql package but still cannot find initdb/pg_ctl under $_AVIARY_PG_DEBIAN_LIB/*/bin"
    _aviary_log "using PostgreSQL binaries in $AVIARY_PG_BINDIR"
}

# Where the cluster lives: scripts/lib/postgres-layout.sh.
# shellcheck source=scripts/lib/postgres-layout.sh
source "$(dirname "${BASH_SOURCE[0]}")/postgres-layout.sh"
# shellcheck source=scripts/lib/postgres-replica.sh
source "$(dirname "${BASH_SOURCE[0]}")/postgres-replica.sh"

# ---------------------------------------------------------------------------
# Cluster lifecycle
# ---------------------------------------------------------------------------

# A cluster must be served by binaries of its own major version.
_aviary_pg_match_bindir_to_data() {
    [[ -f "$AVIARY_PG_DATA/PG_VERSION" ]] || return 0
    local data_major bin_major other
    data_major="$(tr -d '[:space:]' < "$AVIARY_PG_DATA/PG_VERSION")"
    bin_major="$(_aviary_pg_bindir_major "$AVIARY_PG_BINDIR")"
    [[ "$data_major" == "$bin_major" ]] && return 0
    if other="$(_aviary_pg_find_bindir "$data_major")"; then
        AVIARY_PG_BINDIR="$other"
        return 0
    fi
    _aviary_die "cluster in $AVIARY_PG_DATA was made by PostgreSQL $data_major but only $bin_major is installed; remove $AVIARY_STATE_DIR/pgdata (and its target) to start over"
}

_aviary_pg_running() {
    _aviary_pg_as_owner "$AVIARY_PG_BINDIR/pg_ctl" -D "$AVIARY_PG_DATA" status >/dev/null 2>&1
}

_aviary_pg_initdb() {
    if [[ -f "$AVIARY_PG_DATA/PG_VERSION" ]]; then
        return 0
    fi
    if [[ -n "$(ls -A "$AVIARY_PG_DATA")" ]]; then
        _aviary_die "$AVIARY_PG_DATA is not empty but holds no cluster; refusing to overwrite it"
    fi
    _aviary_log "initialising a new PostgreSQL cluster in $AVIARY_PG_DATA"
    # --no-locale: the C locale exists everywhere (a minimal image may lack
    # others) and sorts deterministically; UTF8 for the data itself.
    local initlog="$AVIARY_PG_RUNDIR/initdb.log"
    if ! _aviary_pg_as_owner "$AVIARY_PG_BINDIR/initdb" -D "$AVIARY_PG_DATA" -U "$AVIARY_PG_OS_USER" \
            --no-locale -E UTF8 --auth-local=peer --auth-host=scram-sha-256 >"$initlog" 2>&1; then
        cat "$initlog" >&2 || true
        _aviary_die "initdb failed (log above: $initlog)"
    fi
    # Our settings live in aviary.conf, regenerated at every start; hook it in once.
    printf "\n# Aviary: settings managed by scripts/lib/postgres.sh\ninclude_if_exists = 'aviary.conf'\n" \
        | _aviary_pg_as_owner sh -c 'cat >> "$1"' sh "$AVIARY_PG_DATA/postgresql.conf"
}

# (Re)write aviary.conf and pg_hba.conf before each start, so settings changed
# here (or a new AVIARY_PG_PORT) apply to clusters created earlier.
_aviary_pg_write_config() {
    _aviary_pg_write_as_owner "$AVIARY_PG_DATA/aviary.conf" <<EOF
# Generated by scripts/lib/postgres.sh at every start; edits are overwritten.
listen_addresses = '127.0.0.1'          # loopback only: never reachable from outside
port = $AVIARY_PG_PORT
unix_socket_directories = '$AVIARY_PG_RUNDIR'  # private: never /var/run/postgresql
unix_socket_permissions = 0700
max_connections = 200
password_encryption = 'scram-sha-256'
# Acknowledged writes must survive a crash: keep these on.
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
    _aviary_pg_write_hba
}

_aviary_pg_write_hba() {
    _aviary_pg_write_as_owner "$AVIARY_PG_DATA/pg_hba.conf" <<EOF
# Generated by scripts/lib/postgres.sh at every start; edits are overwritten.
# TYPE  DATABASE     USER  ADDRESS       METHOD
# The superuser, over the private socket, only for setup (roles, databases) and for the
# test replica's WAL stream (scripts/lib/postgres-replica.sh).
local   all          $AVIARY_PG_OS_USER        peer
local   replication  $AVIARY_PG_OS_USER        peer
# Everyone else (the aviary role): TCP on loopback with a password.
host    all          all   127.0.0.1/32  scram-sha-256
EOF
}

# psql as the superuser over the private unix socket; SQL comes on stdin so
# the role password never appears in a process list.
_aviary_pg_psql_super() {
    _aviary_pg_as_owner "$AVIARY_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$AVIARY_PG_RUNDIR" -p "$AVIARY_PG_ACTIVE_PORT" -U "$AVIARY_PG_OS_USER" -d postgres -f -
}

# Password of role `aviary`: generated once, kept in .aviary/pg_password (600).
# Hex only, so it can go into a URL without encoding.
_aviary_pg_password() {
    local pw=""
    if [[ -s "$AVIARY_PG_PASSWORD_FILE" ]]; then
        pw="$(tr -d '[:space:]' < "$AVIARY_PG_PASSWORD_FILE")"
    fi
    if [[ -z "$pw" ]]; then
        pw="$(_aviary_random_hex 24)"
        (umask 077 && printf '%s\n' "$pw" > "$AVIARY_PG_PASSWORD_FILE.tmp.$$")
        mv -f "$AVIARY_PG_PASSWORD_FILE.tmp.$$" "$AVIARY_PG_PASSWORD_FILE"
    fi
    chmod 600 "$AVIARY_PG_PASSWORD_FILE"
    [[ "$pw" =~ ^[A-Za-z0-9._~-]+$ ]] \
        || _aviary_die "$AVIARY_PG_PASSWORD_FILE must hold a URL-safe password ([A-Za-z0-9._~-])"
    printf '%s\n' "$pw"
}

# Create role `aviary` if missing and (re)set its password from the file, so a
# lost pg_password file heals itself on the next start.
_aviary_pg_ensure_role() {
    local pw
    pw="$(_aviary_pg_password)"
    _aviary_pg_psql_super <<EOF
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$AVIARY_PG_ROLE') AS aviary_need_role \gset
\if :aviary_need_role
CREATE ROLE $AVIARY_PG_ROLE;
\endif
ALTER ROLE $AVIARY_PG_ROLE WITH LOGIN CREATEDB NOSUPERUSER PASSWORD '$pw';
EOF
}

# pg_ctl start, with the lock fd closed: the postmaster would otherwise inherit
# it and hold the start lock for as long as it runs.
_aviary_pg_ctl_start() {
    local -a cmd=("$AVIARY_PG_BINDIR/pg_ctl" -D "$AVIARY_PG_DATA" -l "$AVIARY_PG_LOG" -w -t 120 -s start)
    if [[ -n "$_AVIARY_PG_LOCK_FD" ]]; then
        _aviary_pg_as_owner "${cmd[@]}" {_AVIARY_PG_LOCK_FD}>&-
    else
        _aviary_pg_as_owner "${cmd[@]}"
    fi
}

aviary_pg_start() {
    [[ -n "$AVIARY_PG_BINDIR" ]] || aviary_pg_ensure_installed
    [[ "$AVIARY_PG_PORT" =~ ^[1-9][0-9]{0,4}$ ]] && (( AVIARY_PG_PORT < 65536 )) \
        || _aviary_die "AVIARY_PG_PORT='$AVIARY_PG_PORT' is not a valid TCP port"

    _aviary_pg_resolve_layout
    _aviary_pg_match_bindir_to_data

    # Serialise init/start between scripts running at once (serve + test).
    if command -v flock >/dev/null 2>&1; then
        exec {_AVIARY_PG_LOCK_FD}>>"$AVIARY_STATE_DIR/pg.lock"
        flock -w 300 "$_AVIARY_PG_LOCK_FD" || _aviary_die "timed out waiting for $AVIARY_STATE_DIR/pg.lock"
    fi

    _aviary_pg_initdb

    if _aviary_pg_running; then
        # Someone (another scripts/serve, a developer) already runs this cluster:
        # use it, and leave AVIARY_PG_STARTED_BY_US alone so we never stop it
        # (it stays 1 if this same shell started it earlier).
        AVIARY_PG_ACTIVE_PORT="$(sed -n 4p "$AVIARY_PG_DATA/postmaster.pid" | tr -d '[:space:]')"
        [[ -n "$AVIARY_PG_ACTIVE_PORT" ]] || AVIARY_PG_ACTIVE_PORT="$AVIARY_PG_PORT"
        _aviary_log "reusing the running PostgreSQL cluster in $AVIARY_PG_DATA (port $AVIARY_PG_ACTIVE_PORT)"
        if [[ "$AVIARY_PG_ACTIVE_PORT" != "$AVIARY_PG_PORT" ]]; then
            _aviary_log "note: it listens on $AVIARY_PG_ACTIVE_PORT, not AVIARY_PG_PORT=$AVIARY_PG_PORT; stop it to change ports"
        fi
    else
        if _aviary_port_in_use "$AVIARY_PG_PORT"; then
            _aviary_die "port $AVIARY_PG_PORT on 127.0.0.1 is already in use by something other than this checkout's cluster; set AVIARY_PG_PORT to a free port (e.g. AVIARY_PG_PORT=54330)"
        fi
        _aviary_pg_write_config
        _aviary_log "starting PostgreSQL on 127.0.0.1:$AVIARY_PG_PORT (data $AVIARY_PG_DATA, log $AVIARY_PG_LOG)"
        if ! _aviary_pg_ctl_start; then
            tail -n 30 "$AVIARY_PG_LOG" >&2 || true
            _aviary_die "PostgreSQL failed to start (log above: $AVIARY_PG_LOG)"
        fi
        AVIARY_PG_STARTED_BY_US=1
        AVIARY_PG_ACTIVE_PORT="$AVIARY_PG_PORT"
    fi

    if [[ -n "$_AVIARY_PG_LOCK_FD" ]]; then
        exec {_AVIARY_PG_LOCK_FD}>&-
        _AVIARY_PG_LOCK_FD=""
    fi

    _aviary_pg_ensure_role
}

aviary_pg_create_db() {
    local name="${1:?usage: aviary_pg_create_db NAME}"
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || _aviary_die "database name '$name' must match [A-Za-z_][A-Za-z0-9_]*"
    [[ -n "$AVIARY_PG_ACTIVE_PORT" ]] || _aviary_die "aviary_pg_create_db: call aviary_pg_start first"
    _aviary_pg_psql_super <<EOF
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = '$name') AS aviary_need_db \gset
\if :aviary_need_db
CREATE DATABASE "$name" OWNER $AVIARY_PG_ROLE;
\endif
EOF
}

aviary_pg_url() {
    local name="${1:?usage: aviary_pg_url NAME}" pw
    [[ -s "$AVIARY_PG_PASSWORD_FILE" ]] || _aviary_die "no $AVIARY_PG_PASSWORD_FILE yet; call aviary_pg_start first"
    pw="$(tr -d '[:space:]' < "$AVIARY_PG_PASSWORD_FILE")"
    printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$AVIARY_PG_ROLE" "$pw" "${AVIARY_PG_ACTIVE_PORT:-$AVIARY_PG_PORT}" "$name"
}

# Stop the cluster now, whoever started it (scripts/soak stops and restarts its
# own cluster).
aviary_pg_stop() {
    _aviary_pg_as_owner "$AVIARY_PG_BINDIR/pg_ctl" -D "$AVIARY_PG_DATA" -m fast -w -t 120 -s stop
}

# Stop the cluster only if aviary_pg_start in this shell started it; a cluster
# that was already running belongs to whoever started it. Never fails, so it is
# safe in an EXIT trap.
aviary_pg_stop_if_started() {
    if [[ "${AVIARY_PG_STARTED_BY_US:-0}" == 1 ]]; then
        AVIARY_PG_STARTED_BY_US=0
        _aviary_log "stopping the PostgreSQL cluster this script started"
        aviary_pg_stop || _aviary_log "warning: could not stop PostgreSQL in $AVIARY_PG_DATA (see $AVIARY_PG_LOG)"
    fi
    return 0
}
