# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034 # the globals are used by the boot scripts
#
# What both boots of tests/vm/zfs-test share: three dm-remap devices over dm-dust, the two ZFS
# pools on them, and the records of boot 1 on the scratch disk.
#
#   remap_a, remap_b: main = dust over 120 MiB of $MAIN each; pool "remapmirror", a mirror of both
#   remap_c:          main = dust over 120 MiB of $SCRATCH; pool "remapcopies", copies=2
#   spares:           20 MiB of $SPARE each
#
# Records (checksums, bad blocks): a tar archive at RECORDS_AT of $SCRATCH, past remap_c's main.

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$DMR_LIB"
set -euo pipefail

DEVS=(a b c)
MAIN_MIB=120
SPARE_MIB=20
BLOCK=4096                 # dm-dust block size; ZFS writes 4 KiB blocks (ashift=12)
RECORDS_AT=$((200 * MiB))  # on $SCRATCH
RECORDS=/tmp/zfs-records
POOLS=(remapmirror remapcopies)
# Sizes: ZFS data written per pool (MiB) and bad 4 KiB blocks injected per device.
DATA_MIB=${ZFS_DATA_MIB:-16}
BAD_BLOCKS=${ZFS_BAD_BLOCKS:-8}

# OpenZFS userspace and modules built by scripts/zfs-build (ZFS_DIR from tests/vm/zfs-test).
[[ -n ${ZFS_DIR:-} && -f $ZFS_DIR/env ]] || fail "ZFS_DIR does not hold a scripts/zfs-build output"
# shellcheck source=/dev/null
source "$ZFS_DIR/env"

zfs_load() {
    grep -q '^zfs ' /proc/modules && return
    insmod "$ZFS_DIR/modules/spl.ko"
    insmod "$ZFS_DIR/modules/zfs.ko"
}

# The main and spare devices under remap_X, and dust_X over the main: the same sectors each boot.
lower_up() { # X
    local i disk offset
    case $1 in
    a) disk=$MAIN offset=0 i=0 ;;
    b) disk=$MAIN offset=$MAIN_MIB i=1 ;;
    c) disk=$SCRATCH offset=0 i=2 ;;
    esac
    linear "main_$1" "$disk" $((MAIN_MIB * 2048)) $((offset * 2048)) >/dev/null
    linear "spare_$1" "$SPARE" $((SPARE_MIB * 2048)) $((i * SPARE_MIB * 2048)) >/dev/null
    dmsetup create "dust_$1" --table "0 $((MAIN_MIB * 2048)) dust /dev/mapper/main_$1 0 $BLOCK"
    dmsetup message "dust_$1" 0 enable
    dmsetup message "dust_$1" 0 quiet
}

remap_up() { # X
    dmsetup create "remap_$1" --table \
        "0 $((MAIN_MIB * 2048)) $TARGET /dev/mapper/dust_$1 /dev/mapper/spare_$1"
}

# dm-remap INFO status field N of remap_X (docs/status.md): 3 remaps, 4 pending.
field() { # X N
    dmr_status_field "remap_$1" "$2"
}

# Makes bad blocks of dust_X fail their reads and their next 255 writes.
add_bad() { # X BLOCK...
    local x=$1 b
    shift
    for b; do
        dmsetup message "dust_$x" 0 addbadblock "$b" 255
    done
}

records_save() {
    tar -cf "$RECORDS.tar" -C "$RECORDS" .
    dd if="$RECORDS.tar" of="$SCRATCH" bs=1M seek=$((RECORDS_AT / MiB)) conv=fsync status=none
}

records_load() {
    mkdir -p "$RECORDS"
    dd if="$SCRATCH" of="$RECORDS.tar" bs=1M skip=$((RECORDS_AT / MiB)) count=8 status=none
    tar -xf "$RECORDS.tar" -C "$RECORDS" || fail "no records from boot 1 at $RECORDS_AT of $SCRATCH"
}

# sha256 of every file under the pools' mount points, one line each.
pool_sums() {
    (cd /mnt && find "${POOLS[@]}" -type f -print0 | sort -z | xargs -0 sha256sum)
}

# zpool status facts: "scan" line, data errors line, and the READ/WRITE/CKSUM sum of a pool.
scan_line() { # POOL
    zpool status "$1" | sed -n 's/^ *scan: //p'
}
errors_line() { # POOL
    zpool status "$1" | sed -n 's/^errors: //p'
}
# The bytes the last scrub repaired, from "scrub repaired 96K in ...".
repaired() { # POOL
    scan_line "$1" | sed -n 's/.*scrub repaired \([^ ]*\) in.*/\1/p'
}

# Only the dm-remap devices are searched: the devices under them show the same labels, and an
# import from those would bypass dm-remap.
pools_import() {
    local p x dirs=()
    for x in "${DEVS[@]}"; do
        dirs+=(-d "/dev/mapper/remap_$x")
    done
    for p in "${POOLS[@]}"; do
        zpool import "${dirs[@]}" -R /mnt "$p"
    done
    for p in "${POOLS[@]}"; do
        zpool status -P "$p" | grep -q /dev/mapper/remap_ || fail "$p: not imported from the dm-remap devices"
        ! zpool status -P "$p" | grep -E '/dev/mapper/(main|dust|spare)_' || fail "$p: imported from a device under dm-remap"
    done
}

pools_export() {
    local p
    for p in "${POOLS[@]}"; do
        zpool export "$p"
    done
}

# Checks that POOL is healthy: no data errors, and (when asked) a scrub that repaired nothing.
assert_clean_scrub() { # POOL
    zpool scrub -w "$1"
    local rep errs
    rep=$(repaired "$1") errs=$(errors_line "$1")
    echo "  $1: $(scan_line "$1"); errors: $errs"
    assert_eq "$rep" 0B "$1: bytes the clean scrub repaired"
    assert_eq "$errs" "No known data errors" "$1: data errors"
    assert_match "$(scan_line "$1")" "with 0 errors" "$1: scrub errors"
}
