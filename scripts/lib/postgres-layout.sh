# scripts/lib/postgres-layout.sh — where the private cluster's data, socket and log live,
# and which OS user runs it. Sourced by scripts/lib/postgres.sh after its helpers; functions
# only.

# ---------------------------------------------------------------------------
# Where the cluster lives
# ---------------------------------------------------------------------------

# Socket directory for a data directory kept inside the repo. The unix socket
# path (dir + "/.s.PGSQL.<port>") must fit in sun_path (107 bytes); a deep
# checkout gets a private directory under /tmp instead.
_aviary_pg_repo_rundir() {
    local rundir="$AVIARY_STATE_DIR/pgrun"
    if (( ${#rundir} + 16 > 100 )); then
        rundir="/tmp/aviary-pg-$(_aviary_repo_hash)"
    fi
    printf '%s\n' "$rundir"
}

# Short, stable id of this checkout (sha256 of its absolute path).
_aviary_repo_hash() {
    printf '%s' "$AVIARY_REPO_ROOT" | sha256sum | cut -c1-12
}

# Root only: can the `postgres` user traverse every directory from / down to
# .aviary/? A clone under /root (mode 700) fails this, /work/... passes.
_aviary_pg_repo_reachable_by() {
    local user="$1" p="$AVIARY_STATE_DIR"
    local -a comps=()
    while [[ "$p" != "/" ]]; do
        comps+=("$p")
        p="$(dirname "$p")"
    done
    comps+=("/")
    _aviary_run_as "$user" sh -c 'for p do test -x "$p" || exit 1; done' sh "${comps[@]}"
}

# Ensure the socket/log directory exists and really belongs to the cluster owner.
# For /tmp (world-writable) refuse anything we did not create ourselves.
_aviary_pg_prepare_rundir() {
    if [[ -L "$AVIARY_PG_RUNDIR" ]]; then
        _aviary_die "$AVIARY_PG_RUNDIR is a symlink; refusing to use it as the socket directory"
    fi
    if [[ ! -d "$AVIARY_PG_RUNDIR" ]]; then
        _aviary_pg_mkdir_owned "$AVIARY_PG_RUNDIR"
    fi
    local owner
    owner="$(stat -c %U "$AVIARY_PG_RUNDIR")"
    [[ "$owner" == "$AVIARY_PG_OS_USER" ]] \
        || _aviary_die "$AVIARY_PG_RUNDIR is owned by '$owner', expected '$AVIARY_PG_OS_USER'"
}

# Decide AVIARY_PG_DATA, AVIARY_PG_RUNDIR and AVIARY_PG_OS_USER.
#
# Once .aviary/pgdata exists (directory or symlink) it is reused as is, so a
# second run finds the same cluster. On first run:
#   - not root: .aviary/pgdata, run as the current user;
#   - root, and `postgres` can reach .aviary/: .aviary/pgdata owned by postgres;
#   - root otherwise: /var/lib/aviary/<sha>/pgdata (postgres, 700), with
#     .aviary/pgdata a symlink to it.
_aviary_pg_resolve_layout() {
    AVIARY_PG_DATA="" AVIARY_PG_RUNDIR="" AVIARY_PG_OS_USER=""
    mkdir -p "$AVIARY_STATE_DIR"
    local link="$AVIARY_STATE_DIR/pgdata"
    local fallback_base
    fallback_base="$_AVIARY_PG_FALLBACK_ROOT/$(_aviary_repo_hash)"

    if [[ -L "$link" ]]; then
        AVIARY_PG_DATA="$(readlink "$link")"
        [[ "$AVIARY_PG_DATA" == /* ]] || _aviary_die "$link must be a symlink to an absolute path"
        AVIARY_PG_RUNDIR="$(dirname "$AVIARY_PG_DATA")"
        if [[ "$AVIARY_PG_DATA" != "$fallback_base/pgdata" ]]; then
            # e.g. the checkout was copied with `cp -a`: both copies share one cluster.
            _aviary_log "note: $link points to $AVIARY_PG_DATA (not $fallback_base/pgdata); using it"
        fi
    elif [[ -d "$link" ]]; then
        AVIARY_PG_DATA="$link"
        AVIARY_PG_RUNDIR="$(_aviary_pg_repo_rundir)"
    elif [[ -e "$link" ]]; then
        _aviary_die "$link exists but is neither a directory nor a symlink; remove it"
    elif (( EUID != 0 )); then
        AVIARY_PG_DATA="$link"
        AVIARY_PG_RUNDIR="$(_aviary_pg_repo_rundir)"
    else
        id postgres >/dev/null 2>&1 \
            || _aviary_die "running as root but there is no 'postgres' system user to run PostgreSQL as (install the postgresql package)"
        AVIARY_PG_OS_USER="postgres"
        local repo_rundir
        repo_rundir="$(_aviary_pg_repo_rundir)"
        if [[ "$repo_rundir" == "$AVIARY_STATE_DIR/pgrun" ]] && _aviary_pg_repo_reachable_by postgres; then
            _aviary_pg_mkdir_owned "$link"
            # Belt and braces (e.g. root-squashed or odd mounts): can postgres write it?
            if _aviary_run_as postgres test -w "$link" -a -x "$link"; then
                AVIARY_PG_DATA="$link"
                AVIARY_PG_RUNDIR="$repo_rundir"
            else
                rmdir "$link"
            fi
        fi
        if [[ -z "$AVIARY_PG_DATA" ]]; then
            _aviary_log "the postgres user cannot reach $AVIARY_STATE_DIR; keeping the cluster in $fallback_base"
            mkdir -p "$_AVIARY_PG_FALLBACK_ROOT"
            chmod 755 "$_AVIARY_PG_FALLBACK_ROOT"
            AVIARY_PG_DATA="$fallback_base/pgdata"
            AVIARY_PG_RUNDIR="$fallback_base"
            # The symlink is what makes a later run find this cluster again.
            ln -sfn "$AVIARY_PG_DATA" "$link"
        fi
    fi

    # Who runs the server: the owner of an existing data directory (so root can
    # reuse a cluster a developer created, and vice versa is refused clearly);
    # for a new one, postgres when root, else ourselves.
    if [[ -d "$AVIARY_PG_DATA" ]]; then
        AVIARY_PG_OS_USER="$(stat -c %U "$AVIARY_PG_DATA")"
        [[ "$AVIARY_PG_OS_USER" != "root" ]] \
            || _aviary_die "$AVIARY_PG_DATA is owned by root, but PostgreSQL cannot run as root; remove $link and retry"
        if (( EUID != 0 )) && [[ "$AVIARY_PG_OS_USER" != "$(id -un)" ]]; then
            _aviary_die "$AVIARY_PG_DATA belongs to '$AVIARY_PG_OS_USER' (created by a root run?); run as root, or remove $link to start a cluster of your own"
        fi
    elif (( EUID == 0 )); then
        AVIARY_PG_OS_USER="postgres"
    else
        AVIARY_PG_OS_USER="$(id -un)"
    fi

    # Create whatever is missing (also when /var/lib/aviary was wiped but the
    # symlink survived).
    if [[ ! -d "$AVIARY_PG_DATA" ]]; then
        if (( EUID != 0 )) && [[ "$AVIARY_PG_DATA" != "$AVIARY_STATE_DIR"/* ]]; then
            _aviary_die "$AVIARY_PG_DATA is missing and only root can recreate it; run as root, or remove $link"
        fi
        if [[ "$AVIARY_PG_RUNDIR" == "$_AVIARY_PG_FALLBACK_ROOT"/* ]]; then
            mkdir -p "$_AVIARY_PG_FALLBACK_ROOT"
            chmod 755 "$_AVIARY_PG_FALLBACK_ROOT"
        fi
        [[ -d "$AVIARY_PG_RUNDIR" ]] || _aviary_pg_mkdir_owned "$AVIARY_PG_RUNDIR"
        _aviary_pg_mkdir_owned "$AVIARY_PG_DATA"
    fi
    if [[ "$AVIARY_PG_RUNDIR" == "$_AVIARY_PG_FALLBACK_ROOT"/* && ! -e "$AVIARY_PG_RUNDIR/REPO" ]]; then
        # For humans cleaning up /var/lib/aviary: which checkout this belongs to.
        printf '%s\n' "$AVIARY_REPO_ROOT" > "$AVIARY_PG_RUNDIR/REPO"
    fi
    _aviary_pg_prepare_rundir
    AVIARY_PG_LOG="$AVIARY_PG_RUNDIR/postgres.log"

    case "$AVIARY_PG_RUNDIR" in
        *,*|*\'*) _aviary_die "socket directory '$AVIARY_PG_RUNDIR' must not contain commas or quotes" ;;
    esac
}
