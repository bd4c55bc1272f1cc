# SPDX-License-Identifier: GPL-2.0
#
# Settings and helpers shared by the scripts under scripts/. Sourced, not run.

# Where build outputs live between runs (outside the repository, keyed by their inputs).
CACHE=${DM_REMAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dm-remap}
mkdir -p "$CACHE"

# Pinned tool versions: part of the cache keys.
BINDGEN_VERSION=0.72.1
KERNEL_SERIES=${KERNEL_SERIES:-6.12}
# The second kernel series the module is built and tested on: Debian ships it in trixie-backports
# only, so scripts/install-deps fetches it into the cache (newest version of the series offered).
KERNEL_SERIES_NEXT=7.3
KERNEL_SERIES_NEXT_SUITE=trixie-backports

# The kernel toolchain: Debian's rustc (with library source) and clang 19, never rustup's.
KRUSTC=/usr/bin/rustc
LLVM_BIN=/usr/lib/llvm-19/bin
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
BINDGEN="$CACHE/bindgen-$BINDGEN_VERSION/bin/bindgen"

# Prints a timestamped progress line to stderr.
step() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Fails with a message.
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The rust library source that matches $KRUSTC (from rust-web-src).
rust_lib_src() {
    local v
    v=$("$KRUSTC" --version | awk '{print $2}')
    echo "/usr/src/rustc-$v/library"
}

# make arguments for building against a Rust-enabled kernel with this toolchain.
kernel_make_args() {
    echo "ARCH=x86_64 LLVM=1 RUSTC=$KRUSTC HOSTRUSTC=$KRUSTC RUST_LIB_SRC=$(rust_lib_src) BINDGEN=$BINDGEN"
}

# PATH for kernel builds: llvm first, rustup's cargo bin dir removed.
kernel_path() {
    local p
    p=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v '/.cargo/bin' | paste -sd:)
    echo "$LLVM_BIN:$p"
}

# Prints "TARBALL VERSION" of the linux-source package for $KERNEL_SERIES: the installed Debian
# package if there is one, else the copy scripts/install-deps fetched into $CACHE/linux-source-*.
kernel_source() {
    local pkg=linux-source-$KERNEL_SERIES dir v
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        echo "/usr/src/$pkg.tar.xz $(dpkg-query -W -f='${Version}' "$pkg")"
        return
    fi
    dir=$CACHE/$pkg
    [[ -f $dir/version ]] || die "$pkg is neither installed nor fetched: run scripts/install-deps"
    v=$(cat "$dir/version")
    echo "$dir/$v/$pkg.tar.xz $v"
}
