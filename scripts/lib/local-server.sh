# scripts/lib/local-server.sh — what scripts/serve and scripts/aviary share: this checkout's
# private cluster and its `aviary` database, and the release binary. Source after postgres.sh.

# Starts the cluster when needed (installing PostgreSQL when missing), creates the database
# `aviary`, exports AVIARY_DATABASE_URL for it, builds the release `aviary` (output on stderr,
# so that stdout stays the command's) and sets `aviary_bin` to the binary's directory; leaves
# the current directory at the checkout's root.
aviary_local_prepare() {
    aviary_pg_ensure_installed
    aviary_pg_start >&2
    aviary_pg_create_db aviary >&2
    AVIARY_DATABASE_URL="$(aviary_pg_url aviary)"
    export AVIARY_DATABASE_URL
    cd "$AVIARY_REPO_ROOT"
    swift build -c release --product aviary >&2
    aviary_bin="$(swift build -c release --show-bin-path)"
}
