# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Which errors consume spare (docs/design.md, "Which errors remap"): a failure that is not the
# medium's (here BLK_STS_NOSPC, from a loop device over a full tmpfs) is returned without a
# remap; an outage of the spare marks at most 3 spare units bad however many writes fail
# during it. Also: a write-zeroes heals a pending unit as a write does; a hostile superblock
# seq near u64::MAX does not freeze commits.

err_field() { # DEV N: INFO status field N (docs/status.md): 3 remaps, 4 pending, 5 used/total
    dmr_status_field "$@"
}

err_spare_used() { # DEV
    dmr_status_field "$1" 5 | cut -d/ -f1
}

test_errors_nospc_write_uses_no_spare() {
    local main i
    dmr_load
    # main: a loop device over a sparse file on a tmpfs that is full, so that every write to
    # a hole of the file fails with ENOSPC, which loop completes as BLK_STS_NOSPC (the
    # thin-provisioning "out of space" status), not a medium error.
    mkdir full
    mount -t tmpfs -o size=4m tmpfs full
    truncate -s 64M full/main.img
    main=$(losetup --find --show full/main.img)
    dd if=/dev/zero of=full/filler bs=64K status=none 2>/dev/null || true
    # Detached at once (the loop device and fd 3 keep it): the runner's cleanup could not
    # unmount it while a loop device uses it.
    exec 3<full
    umount -l full
    local fs=/proc/self/fd/3
    dmsetup create r0 --table "$(dmr_table "$main")"
    head -c 4096 /dev/urandom >chunk
    for i in 1 2 3 4 5 6 7 8; do
        assert_fails dd if=chunk of=/dev/mapper/r0 bs=4096 seek=$((i * 100)) count=1 oflag=direct status=none
    done
    echo "after 8 writes that failed with ENOSPC: $(dmsetup status r0)"
    assert_eq "$(err_field r0 3)" 0 "remaps after writes that failed with ENOSPC"
    assert_eq "$(err_spare_used r0)" 0 "spare units used"
    assert_eq "$(err_field r0 4)" 0 "pending units"
    assert_eq "$(dmsetup message r0 0 list)" "" "list"
    # Space again: the same writes land on main.
    rm "$fs/filler"
    for i in 1 2 3 4 5 6 7 8; do
        write_at chunk /dev/mapper/r0 $((i * 100 * 4096)) direct
    done
    assert_eq "$(err_field r0 3)" 0 "remaps after the writes succeeded"
    drop_caches
    assert_data chunk "$main" $((800 * 4096)) direct
    dmsetup remove r0
    losetup -d "$main"
    exec 3<&-
}

test_errors_spare_outage_burns_at_most_three_units() {
    local main s b used remaps
    local -a bad=()
    dmr_load
    main=$(dust_main)
    s=$(sectors "$SPARE")
    dmsetup create flaky --table "0 $s flakey $SPARE 0 1000000 0"
    dmsetup create r0 --table "$(dmr_table "$main" /dev/mapper/flaky)"
    for ((b = 2000; b < 2000 + 20 * 64; b += 64)); do
        bad+=("$b")
        dmsetup message dust 0 addbadblock "$b" 255
    done
    # The spare goes down: all its I/O fails with EIO (dm-flakey without features).
    dmsetup suspend flaky
    dmsetup reload flaky --table "0 $s flakey $SPARE 0 0 1000000"
    dmsetup resume flaky
    head -c 512 /dev/urandom >one
    for b in "${bad[@]}"; do
        assert_fails dd if=one of=/dev/mapper/r0 bs=512 seek="$b" count=1 oflag=direct status=none
    done
    used=$(err_spare_used r0)
    echo "after ${#bad[@]} failed writes with the spare down: $(dmsetup status r0)"
    ((used <= 3)) || fail "a spare outage marked $used spare units bad over ${#bad[@]} writes (at most 3)"
    assert_eq "$(err_field r0 3)" 0 "remaps while the spare is down"
    # The spare comes back: the writes are remapped, into the units given back.
    dmsetup suspend flaky
    dmsetup reload flaky --table "0 $s flakey $SPARE 0 1000000 0"
    dmsetup resume flaky
    for b in "${bad[@]}"; do
        write_at one /dev/mapper/r0 $((b * 512)) direct
    done
    remaps=$(err_field r0 3)
    assert_eq "$remaps" "${#bad[@]}" "remaps once the spare is back"
    used=$(err_spare_used r0)
    ((used <= remaps + 3)) || fail "spare units used: $used for $remaps remaps (at most 3 bad)"
    drop_caches
    for b in "${bad[@]}"; do
        assert_data one /dev/mapper/r0 $((b * 512)) direct
    done
}

test_errors_write_zeroes_heals_pending() {
    local main bad=4000 first dev
    dmr_load
    main=$(dust_main)
    dmsetup message dust 0 addbadblock $bad
    dmsetup create r0 --table "$(dmr_table "$main")"
    assert_fails dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=$bad count=1 iflag=direct status=none
    assert_eq "$(err_field r0 4)" 1 "pending after the failed read"
    first=$(first_spare_sector r0 "$SPARE")
    # dm-dust has no write-zeroes: take the pending unit (it is in the metadata) over to a
    # device on main itself, whose virtio disk has.
    dmsetup remove r0
    dmsetup remove dust
    # Garbage in the spare unit the heal will get: the write-zeroes must zero it.
    head -c 512 /dev/urandom >one
    write_at one "$SPARE" $((first * 512)) direct
    dmr_create r0
    assert_eq "$(err_field r0 4)" 1 "pending after create"
    dev=$(basename "$(block_dev /dev/mapper/r0)")
    [[ $(cat "/sys/block/$dev/queue/write_zeroes_max_bytes") -gt 0 ]] || fail "r0 has no write-zeroes"
    blkdiscard --zeroout --offset $((bad * 512)) --length 512 /dev/mapper/r0
    assert_eq "$(err_field r0 4)" 0 "pending after a write-zeroes of the unit"
    assert_eq "$(dmsetup message r0 0 list)" "$bad $first" "remap made by the write-zeroes"
    drop_caches
    assert_zero /dev/mapper/r0 $((bad * 512)) 512
}

# Sets the seq of copy 0's superblock (sector 0 of SPARE) to SEQ and fixes its checksum
# (docs/metadata-format.md), with the metadata-garbage test's sealing code.
err_patch_seq() { # SPARE SEQ
    python3 - "$1" "$2" "$DMR_REPO/tests/vm/metadata-garbage.py" <<'EOF'
import importlib.util, os, struct, sys
spec = importlib.util.spec_from_file_location("garbage", sys.argv[3])
garbage = importlib.util.module_from_spec(spec)
spec.loader.exec_module(garbage)
fd = os.open(sys.argv[1], os.O_RDWR)
block = bytearray(os.pread(fd, 4096, 0))
assert block[:8] == b"DMREMAP4", "no superblock at sector 0"
struct.pack_into("<Q", block, 40, int(sys.argv[2]))
garbage.seal_superblock(block)
os.pwrite(fd, bytes(block), 0)
os.fsync(fd)
os.close(fd)
EOF
}

test_errors_hostile_seq_near_max_keeps_commits() {
    dmr_load
    dmr_create r0
    dmsetup remove r0
    # One copy claims to be the newest by far: seq u64::MAX - 1, checksum valid.
    err_patch_seq "$SPARE" 18446744073709551614
    dmr_create r0
    dmsetup message r0 0 remap 1000 >/dev/null
    dmsetup message r0 0 commit
    dmsetup message r0 0 remap 2000 >/dev/null
    dmsetup message r0 0 commit
    echo "after two remaps and commits: $(dmsetup status r0)"
    dmsetup remove r0
    dmr_create r0
    assert_eq "$(dmsetup message r0 0 list | cut -d' ' -f1 | paste -sd' ')" "1000 2000" "remaps after create"
}
