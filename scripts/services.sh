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

# enable_postgres_tls DIR: after start_postgres DIR, turns TLS on in that server with
# certificates made here (an EC P-256 test CA, and a server certificate for
# DNS:localhost signed by it; a second, unrelated CA for failure tests), adds a role
# steward_tls that may only connect over TLS (pg_hba: hostssl trust, hostnossl reject),
# and exports STEWARD_TEST_PG_TLS_DIR (ca.pem, other-ca.pem) and STEWARD_TEST_PG_TLS_URL
# (steward_tls at localhost on the server's port), and STEWARD_TEST_PG_SCRAM_URL: a role
# with a password (SCRAM-SHA-256), also TLS only, for channel binding. Other roles may
# still connect without TLS; sslmode=prefer, the default, then uses it.
enable_postgres_tls() {
    local dir=$1
    ensure_packages openssl
    local tls=$dir/tls
    mkdir -p "$tls"
    if [ ! -f "$tls/server.pem" ]; then
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
        {
            openssl req -x509 "${ec[@]}" -days 3 -subj "/CN=steward test CA" \
                -keyout "$tls/ca.key" -out "$tls/ca.pem" &&
                openssl req -x509 "${ec[@]}" -days 3 -subj "/CN=unrelated test CA" \
                    -keyout "$tls/other-ca.key" -out "$tls/other-ca.pem" &&
                openssl req "${ec[@]}" -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" &&
                printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=CA:FALSE" \
                    "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" >"$tls/server.ext" &&
                openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
                    -days 3 -extfile "$tls/server.ext" -out "$tls/server.pem"
        } >"$tls/openssl.log" 2>&1 || {
            echo "error: making the test certificates failed:" >&2
            cat "$tls/openssl.log" >&2
            return 1
        }
        chown postgres "$tls/server.key" "$tls/server.pem"
        chmod 600 "$tls/server.key"
    fi
    # The TLS-only role's lines go first (pg_hba.conf is read top down), once; the file
    # keeps its owner (written through, not replaced).
    local hba=$dir/pg/pg_hba.conf
    if ! grep -q steward_scram "$hba"; then
        local rest
        rest=$(cat "$hba")
        printf '%s\n' "local all steward_tls reject" "hostnossl all steward_tls all reject" \
            "hostssl all steward_tls all trust" \
            "local all steward_scram reject" "hostnossl all steward_scram all reject" \
            "hostssl all steward_scram all scram-sha-256" "$rest" >"$hba"
    fi
    local quoted=${tls//\'/\'\'}
    local setting
    for setting in "ssl = on" "ssl_cert_file = '$quoted/server.pem'" "ssl_key_file = '$quoted/server.key'"; do
        psql -q "$STEWARD_TEST_PG_URL" -c "ALTER SYSTEM SET $setting" >&2
    done
    local role
    for role in "steward_tls" "steward_scram PASSWORD 'steward-scram-test'"; do
        psql -q "$STEWARD_TEST_PG_URL" -c "SET password_encryption = 'scram-sha-256'" \
            -c "DO \$\$ BEGIN CREATE ROLE $role LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
            >/dev/null
    done
    psql -q "$STEWARD_TEST_PG_URL" -c "SELECT pg_reload_conf()" >/dev/null
    local port=${STEWARD_TEST_PG_URL##*:}
    port=${port%%/*}
    export STEWARD_TEST_PG_TLS_DIR=$tls
    export STEWARD_TEST_PG_TLS_URL="postgres://steward_tls@localhost:$port/postgres"
    export STEWARD_TEST_PG_SCRAM_URL="postgres://steward_scram:steward-scram-test@localhost:$port/postgres"
    # The reload is asynchronous: wait until a fully checked TLS connection is accepted
    # (which also checks the certificates just made).
    local attempt
    for attempt in $(seq 50); do
        if PGSSLMODE= PGSSLROOTCERT= psql -q "$STEWARD_TEST_PG_TLS_URL?sslmode=verify-full&sslrootcert=$tls/ca.pem" \
            -c 'SELECT 1' >/dev/null 2>&1; then
            echo "postgres TLS on (role steward_tls, CA $tls/ca.pem)" >&2
            return 0
        fi
        sleep 0.1
    done
    echo "error: PostgreSQL did not accept TLS connections after enabling TLS:" >&2
    tail -n 20 "$dir/pg.log" >&2
    return 1
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
