#!/usr/bin/env bash
# Builds Strom's runtime image on this machine without pulling anything:
# FROM scratch with the locally built stromd and strom, the shared libraries
# `ldd` says they load, a passwd entry for the unprivileged user (uid 10001),
# /tmp and /etc/nsswitch.conf. Same layout, user, volume, ports and
# entrypoint as deploy/docker/Dockerfile (see Dockerfile.local).
#
#   deploy/docker/build-local-image.sh [--tag strom:local] [--profile debug|release]
#                                      [--no-build] [--bin-dir DIR]
#
# Binaries come from $CARGO_TARGET_DIR/<profile> (default ~/.cache/strom/target,
# profile debug), built first unless --no-build, or from --bin-dir (never
# built). Prints the image id.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=strom:local
profile=debug
build=1
bin_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --bin-dir) bin_dir=$2; build=0; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "error: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$profile" in
    debug|release) ;;
    *) echo "error: --profile must be debug or release" >&2; exit 2 ;;
esac

. scripts/env.sh
if ! docker info >/dev/null 2>&1; then
    echo "error: no Docker engine reachable (docker info failed)" >&2
    exit 1
fi
if [ "$build" = 1 ]; then
    strom_prereqs
    flag=()
    [ "$profile" = release ] && flag=(--release)
    cargo build "${flag[@]}" --bin stromd --bin strom >&2
fi
bin_dir="${bin_dir:-$CARGO_TARGET_DIR/$profile}"
for b in stromd strom; do
    [ -x "$bin_dir/$b" ] || { echo "error: $bin_dir/$b not found (build it or drop --no-build)" >&2; exit 1; }
done

ctx=$(mktemp -d "${TMPDIR:-/tmp}/strom-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$ctx/data"
chmod 1777 "$root/tmp"

for b in stromd strom; do
    cp "$bin_dir/$b" "$root/usr/local/bin/$b"
    # Debug info is not needed in an image (backtraces keep symbol names).
    if command -v strip >/dev/null 2>&1; then
        strip --strip-debug "$root/usr/local/bin/$b"
    fi
    chmod 0755 "$root/usr/local/bin/$b"
done

# Every shared object the binaries load (and the dynamic loader itself), at
# the same path as on this machine.
libs=$(for b in stromd strom; do ldd "$bin_dir/$b"; done \
    | awk '/=> \// { print $3 } /^\s*\/[^ ]+ \(0x/ { print $1 }' | sort -u)
if [ -z "$libs" ]; then
    echo "error: ldd reported no libraries for $bin_dir/stromd (is it static?)" >&2
    exit 1
fi
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# Loader path used by the binaries' PT_INTERP when it is a symlink elsewhere.
interp=$(readelf -l "$bin_dir/stromd" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p' || true)
if [ -n "$interp" ] && [ ! -e "$root$interp" ]; then
    mkdir -p "$root$(dirname "$interp")"
    cp -L "$interp" "$root$interp"
fi

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
strom:x:10001:10001:strom:/var/lib/strom:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
strom:x:10001:
nogroup:x:65534:
GROUP
# glibc's resolver: /etc/hosts first (Docker writes it), then DNS (service
# names in compose and Kubernetes).
echo "hosts: files dns" > "$root/etc/nsswitch.conf"

cp deploy/docker/Dockerfile.local "$ctx/Dockerfile"
docker build --quiet --tag "$tag" \
    --label "org.opencontainers.image.version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)" \
    --label "strom.build=local-$profile" \
    "$ctx"
