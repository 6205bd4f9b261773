# scripts/lib/python-env.sh — the test suite's own Python: a virtualenv at .aviary/test-venv
# holding exactly scripts/requirements-test.txt. Nothing is installed into the machine's Python.
# Source after postgres.sh (for AVIARY_STATE_DIR and _aviary_as_root), or on its own.

# Makes the virtualenv when it is missing or was made from another requirements file or
# another python3, and sets AVIARY_PYTHON to its interpreter. A virtualenv whose stamp matches
# is used as it is: no pip, no download. Progress goes to stderr.
aviary_python_env() {
    local lib_dir root req venv stamp want
    lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
    root="$(cd "$lib_dir/../.." && pwd -P)"
    req="$root/scripts/requirements-test.txt"
    venv="${AVIARY_STATE_DIR:-$root/.aviary}/test-venv"
    stamp="$venv/requirements.sha256"
    command -v python3 >/dev/null 2>&1 || _aviary_python_install_base
    # The stamp names the requirements' contents and the interpreter they were installed for.
    want="$( { sha256sum < "$req"; python3 -c 'import sys; print(sys.version, sys.base_prefix)'; } | sha256sum | cut -d' ' -f1)"
    AVIARY_PYTHON="$venv/bin/python"
    if [[ -x "$AVIARY_PYTHON" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        export AVIARY_PYTHON
        return 0
    fi
    echo "scripts: making the test virtualenv $venv from scripts/requirements-test.txt" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" >&2; then
        rm -rf "$venv"
        _aviary_python_install_base
        python3 -m venv "$venv" >&2
    fi
    # --no-deps: the file pins every package the suite needs, its dependencies included, and
    # pip resolves nothing beyond it.
    "$AVIARY_PYTHON" -m pip install -q --disable-pip-version-check --no-deps -r "$req" >&2
    # Written last: a virtualenv left half made by an interrupted install has no stamp.
    printf '%s\n' "$want" > "$stamp"
    export AVIARY_PYTHON
}

# Debian's python3 leaves venv's pip (ensurepip) to the python3-venv package; a fresh machine
# may lack python3 itself.
_aviary_python_install_base() {
    local as_root=()
    (( EUID == 0 )) || as_root=(sudo)
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-venv >&2
}
