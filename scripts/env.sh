# Shared by the scripts: where builds go, and the system prerequisites.
# Sourced, not run.

# One cached target dir outside the checkout: RocksDB's C++ build alone
# takes minutes, so every clone and CI run on a machine reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strom/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Installs Debian packages as root; `apt-get update` runs at most once per
# shell. Fails (quietly) when not root or without apt-get.
strom_apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    if [ -z "${STROM_APT_UPDATED:-}" ]; then
        apt-get update -qq >/dev/null || return 1
        STROM_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# librocksdb-sys generates its bindings with bindgen, which needs libclang.
strom_prereqs() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found: install the Rust toolchain (https://rustup.rs) and retry" >&2
        return 1
    fi
    # (libclang-cpp, which other packages pull in, is not what bindgen loads.)
    if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
            /usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so* >/dev/null 2>&1 \
        && [ -z "${LIBCLANG_PATH:-}" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing libclang-dev (needed by RocksDB's bindings)..." >&2
            strom_apt_install libclang-dev \
                || { echo "error: apt-get install libclang-dev failed" >&2; return 1; }
        else
            echo "error: libclang not found: run 'sudo apt-get install libclang-dev' (or set LIBCLANG_PATH) and retry" >&2
            return 1
        fi
    fi
}

# A Python virtualenv with what scripts/check-deploy and the Python example
# need (scripts/requirements-ci.txt); sets STROM_PYTHON to its interpreter.
strom_python_env() {
    local venv="${STROM_VENV:-$HOME/.cache/strom/venv}"
    if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$venv"
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            # Debian and Ubuntu ship venv's pip bootstrap separately.
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                echo "installing python3-venv..." >&2
                strom_apt_install python3-venv \
                    && python3 -m venv "$venv" \
                    || { echo "error: cannot create a Python venv in $venv" >&2; return 1; }
            else
                echo "error: 'python3 -m venv' failed: run 'sudo apt-get install python3-venv' and retry" >&2
                return 1
            fi
        fi
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements-ci.txt \
        || { echo "error: pip install -r scripts/requirements-ci.txt failed" >&2; return 1; }
    export STROM_PYTHON="$venv/bin/python"
    export PATH="$venv/bin:$PATH"
}

# The fault-injection, Docker and Kafka-client tests' needs, installed when
# run as root on Debian/Ubuntu (else each missing piece is named with its
# install command): kcat (integration-tests/tests/kafka.rs), nftables and the
# cgroup2 hierarchy (network partitions in jepsen/), a
# running Docker engine and docker-compose (integration-tests/tests/compose.rs).
# Whatever is still missing afterwards makes strom_test_skips skip the tests
# that need it.
strom_test_prereqs() {
    local root=0
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && root=1
    local want=()
    command -v nft >/dev/null 2>&1 || want+=(nftables)
    command -v kcat >/dev/null 2>&1 || want+=(kcat)
    command -v docker >/dev/null 2>&1 || want+=(docker.io)
    if ! docker-compose version >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
        want+=(docker-compose)
    fi
    if [ ${#want[@]} -gt 0 ]; then
        if [ $root = 1 ]; then
            echo "installing ${want[*]} (for the fault-injection and Docker tests)..." >&2
            strom_apt_install "${want[@]}" \
                || echo "warning: apt-get install ${want[*]} failed" >&2
        else
            echo "note: missing ${want[*]}: run 'sudo apt-get install ${want[*]}' to run every test" >&2
        fi
    fi
    # The engine may be installed but stopped (no init system in a container).
    if command -v docker >/dev/null 2>&1 && ! timeout 20 docker info >/dev/null 2>&1 \
        && [ "$(id -u)" = 0 ]; then
        echo "starting the Docker engine..." >&2
        if ! { service docker start || systemctl start docker; } >/dev/null 2>&1 \
            && command -v dockerd >/dev/null 2>&1; then
            nohup dockerd >/var/log/strom-dockerd.log 2>&1 &
            disown
        fi
        local i
        for i in $(seq 30); do
            timeout 10 docker info >/dev/null 2>&1 && break
            sleep 1
        done
    fi
    # Hosts on cgroup v1 alone: a cgroup2 hierarchy beside it (hybrid), where
    # nft's `socket cgroupv2` match looks.
    if [ "$(id -u)" = 0 ] && [ -z "$(strom_cgroup2_mount)" ] && [ -d /sys/fs/cgroup ]; then
        echo "mounting a cgroup2 hierarchy at /sys/fs/cgroup/unified..." >&2
        { mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified; } \
            || echo "warning: mounting cgroup2 failed" >&2
    fi
}

# Where the cgroup2 hierarchy is mounted (empty when it is not).
strom_cgroup2_mount() {
    awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
        /proc/self/mountinfo
}

# Decides which tests this machine cannot run. Tests needing more than a
# Linux machine sit in modules named after the need (`needs_docker::`,
# `needs_firewall::`, `needs_root::`); for each need missing here this sets
# STROM_SKIP (module names, for `--skip <name>::`) and prints the reason.
# Mirrors the tests' own checks (jepsen/src/nemesis/net.rs `unavailable`,
# compose.rs), which fail a test run where the need is missing.
strom_test_skips() {
    STROM_SKIP=()
    local why out
    why=""
    if ! out=$(timeout 20 docker info 2>&1); then
        why="no Docker engine: docker info failed: $(printf '%s' "$out" | tail -n 1)"
    elif ! docker-compose version >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
        why="neither docker-compose nor 'docker compose' works"
    fi
    [ -n "$why" ] && { STROM_SKIP+=(needs_docker); echo "SKIPPED needs_docker:: tests: $why" >&2; }
    why=""
    local cg
    cg=$(strom_cgroup2_mount)
    if [ "$(id -u)" != 0 ]; then
        why="network partitions need root (nftables and cgroups)"
    elif ! out=$(nft list tables 2>&1); then
        why="network partitions need nftables: nft list tables failed: $(printf '%s' "$out" | tail -n 1)"
    elif [ -z "$cg" ]; then
        why="no cgroup2 hierarchy is mounted"
    elif [ "${cg#/sys/fs/cgroup}" = "$cg" ]; then
        why="the cgroup2 hierarchy is mounted at $cg, not under /sys/fs/cgroup where nft looks"
    fi
    [ -n "$why" ] && { STROM_SKIP+=(needs_firewall); echo "SKIPPED needs_firewall:: tests: $why" >&2; }
    # The Kafka listener's tests drive kcat and confluent-kafka (in the venv
    # of strom_python_env).
    why=""
    if ! command -v kcat >/dev/null 2>&1; then
        why="kcat is not installed: run 'sudo apt-get install kcat'"
    elif ! "${STROM_PYTHON:-python3}" -c 'import confluent_kafka' >/dev/null 2>&1; then
        why="confluent-kafka is not importable by ${STROM_PYTHON:-python3}: run scripts/test (strom_python_env) or pip install confluent-kafka"
    fi
    [ -n "$why" ] && { STROM_SKIP+=(needs_kafka_clients); echo "SKIPPED needs_kafka_clients:: tests: $why" >&2; }
    if [ "$(id -u)" != 0 ]; then
        STROM_SKIP+=(needs_root)
        echo "SKIPPED needs_root:: tests: mounting a tmpfs needs root" >&2
    fi
    return 0
}
