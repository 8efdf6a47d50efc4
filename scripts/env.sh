# Shared by the scripts: where builds go, and the system prerequisites.
# Sourced, not run.

# One cached target dir outside the checkout: RocksDB's C++ build alone
# takes minutes, so every clone and CI run on a machine reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strom/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

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
            apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null \
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
                apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
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
