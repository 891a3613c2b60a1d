# shellcheck shell=bash
# Starts and stops the real services steward's tests and benchmarks need, on private
# ports under a temporary directory. Source this file, then call start_postgres DIR.
# Every function installs what is missing (Debian packages) before starting.

STEWARD_SERVICES_APT_UPDATED=${STEWARD_SERVICES_APT_UPDATED:-}

ensure_packages() {
    local missing=()
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}" >&2
        if [ -z "$STEWARD_SERVICES_APT_UPDATED" ]; then
            apt-get update -qq >&2
            STEWARD_SERVICES_APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

# Prints a free TCP port on 127.0.0.1 (bind port 0 and read it back).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_postgres DIR: initialises and starts PostgreSQL as the postgres user in DIR/pg on a
# free port with its socket in DIR, and exports STEWARD_TEST_PG_URL (a superuser URL to
# the postgres database). Call stop_postgres DIR to stop it. Tests run without fsync;
# STEWARD_PG_OPTIONS (e.g. "-c fsync=on -c shared_buffers=4GB") is appended to the server
# options and wins over them (benchmarks use it for a production-like server).
start_postgres() {
    local dir=$1
    ensure_packages postgresql
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    local port
    port=$(free_port)
    mkdir -p "$dir"
    chown postgres "$dir"
    chmod 700 "$dir"
    runuser -u postgres -- "$bin/initdb" -D "$dir/pg" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/pg" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 ${STEWARD_PG_OPTIONS:-}" \
        -l "$dir/pg.log" start >/dev/null \
        || { tail -n 50 "$dir/pg.log" >&2; return 1; }
    export STEWARD_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export STEWARD_TEST_PG_BIN="$bin"
    echo "postgres running on 127.0.0.1:$port (data $dir/pg)" >&2
}

stop_postgres() {
    local dir=$1
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$bin" ] && [ -f "$dir/pg/postmaster.pid" ]; then
        runuser -u postgres -- "$bin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
    fi
}

# ensure_sarif_multitool: installs Microsoft's SARIF Multitool (npm package
# @microsoft/sarif-multitool-linux, a self-contained binary) under ~/.cache/steward and
# exports STEWARD_SARIF_MULTITOOL, used to validate `steward scan -o sarif` against the
# official SARIF 2.1.0 schema and rules.
ensure_sarif_multitool() {
    local dir=${STEWARD_CACHE_DIR:-$HOME/.cache/steward}/sarif-multitool
    local tool=$dir/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool
    if [ ! -x "$tool" ]; then
        command -v npm >/dev/null || ensure_packages npm
        mkdir -p "$dir"
        echo "installing @microsoft/sarif-multitool-linux" >&2
        (cd "$dir" && npm install --silent --no-audit --no-fund --prefix "$dir" @microsoft/sarif-multitool-linux@5.7.0 >&2)
    fi
    export STEWARD_SARIF_MULTITOOL=$tool
    export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
}
