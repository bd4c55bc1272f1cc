# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034 # the globals are used by the boot scripts
#
# What both boots of tests/vm/reboot-test share: two dm-remap devices on fixed parts of the disks,
# their bad sectors, and the records of boot 1 on the scratch disk.
#
#   clean: main = dm-dust over all of $MAIN, spare = $SPARE; removed before the reboot.
#   live:  main = dm-dust over 192 MiB of $SCRATCH, spare = 48 MiB of $SCRATCH; still live when
#          the guest reboots (guest-init ends a --script with `sync; reboot -f`).
#
# Records (lists, checksums, bad sectors, metadata seq): a tar archive at the start of $SCRATCH.

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$DMR_LIB"
set -euo pipefail

VARIANTS=(clean live)
BAD_WRITE=(2100 2101 2600 4000) # fail their writes: remapped by the data write over them
BAD_READ=40000                  # fails reads: pending after a read (beyond CHECKED)
MSG_REMAPS=(3000 6000)          # remapped by message (3000 holds data, 6000 zeros)
DATA_AT=$((1 * MiB))            # 1 MiB of data here covers BAD_WRITE and 3000
CHECKED=$((4 * MiB))            # the checksum covers the first 4 MiB of each device
RECORDS=/tmp/records

# Makes the devices under VARIANT's dm-remap device: dust_VARIANT and, for live, its spare.
lower_up() { # VARIANT
    local main
    case $1 in
    clean) main=$MAIN ;;
    live)
        main=$(linear live_main "$SCRATCH" $((192 * 2048)) $((16 * 2048)))
        linear live_spare "$SCRATCH" $((48 * 2048)) $((208 * 2048)) >/dev/null
        ;;
    esac
    dmsetup create "dust_$1" --table "0 $(sectors "$main") dust $main 0 512"
    dmsetup message "dust_$1" 0 enable
    dmsetup message "dust_$1" 0 quiet
}

# The table of VARIANT's dm-remap device.
remap_table() { # VARIANT
    local spare=$SPARE
    [[ $1 == clean ]] || spare=/dev/mapper/live_spare
    echo "0 $(sectors "/dev/mapper/dust_$1") $TARGET /dev/mapper/dust_$1 $spare"
}

# INFO status field N of VARIANT's device: 3 remaps, 10 metadata seq, 11 copies, 12 repairs.
field() { # VARIANT N
    dmr_status_field "$1" "$2"
}
