#!/usr/bin/env bash
# scripts/soak.d/cluster.sh — the soak's own PostgreSQL cluster, apart from scripts/serve's and
# scripts/test's (the soak restarts it). Sourced state lives in .aviary/soak.
#
#   cluster.sh start          install if needed and start (or reuse); prints nothing
#   cluster.sh url NAME       create database NAME if needed and print its URL
#   cluster.sh restart SECS   stop the cluster, wait SECS, start it again
#   cluster.sh stop           stop it
set -euo pipefail
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
state_dir="$(cd "$script_dir/.." && pwd -P)/.aviary/soak"
mkdir -p "$state_dir"
: "${_AVIARY_PG_FALLBACK_ROOT:=/var/lib/aviary/soak-$(printf '%s' "$state_dir" | sha256sum | cut -c1-12)}"
export AVIARY_PG_PORT="${AVIARY_SOAK_PG_PORT:-54351}"
# shellcheck source=scripts/lib/postgres.sh
source "$script_dir/lib/postgres.sh"
AVIARY_STATE_DIR="$state_dir"
AVIARY_PG_PASSWORD_FILE="$AVIARY_STATE_DIR/pg_password"

case "${1:-}" in
    start) aviary_pg_ensure_installed >&2; aviary_pg_start >&2 ;;
    url) aviary_pg_start >&2; aviary_pg_create_db "$2" >&2; aviary_pg_url "$2" ;;
    restart)
        aviary_pg_start >&2
        aviary_pg_stop >&2
        sleep "${2:-5}"
        aviary_pg_start >&2 ;;
    stop)
        aviary_pg_start >&2
        aviary_pg_stop >&2 ;;
    *) echo "usage: cluster.sh start|url NAME|restart SECS|stop" >&2; exit 2 ;;
esac
