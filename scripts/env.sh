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
    if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 \
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
