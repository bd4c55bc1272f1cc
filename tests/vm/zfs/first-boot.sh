#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot 1 of tests/vm/zfs-test, in the guest: ZFS on dm-remap devices (see common.sh). Creates a
# mirror pool on two dm-remap devices and a copies=2 pool on a third, writes data, makes blocks
# that hold data unreadable (and unwritable) with dm-dust under the main devices, and scrubs:
# ZFS must read the errors and rewrite the blocks from its redundancy, dm-remap must remap
# those rewrites, and the next scrub must be clean with 0 data errors and the files intact.
# Then the pools are exported, the dm-remap devices removed and created again, the pools
# imported and checked; the records for boot 2 (after the reboot) go to the scratch disk.
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$DMR_REPO/tests/vm/zfs/common.sh"

mkdir -p "$RECORDS"
zfs_load
dmr_load
for x in "${DEVS[@]}"; do
    lower_up "$x"
    remap_up "$x"
done

echo "== zpool create on /dev/mapper/remap_{a,b} (mirror) and /dev/mapper/remap_c (copies=2)"
zpool create -f -R /mnt -o ashift=12 -O compression=off remapmirror \
    mirror /dev/mapper/remap_a /dev/mapper/remap_b
zpool create -f -R /mnt -o ashift=12 -O compression=off -O copies=2 remapcopies /dev/mapper/remap_c

echo "== writing $DATA_MIB MiB of files into each pool"
for p in "${POOLS[@]}"; do
    for i in $(seq "$DATA_MIB"); do
        head -c $((1 * MiB)) /dev/urandom >"/mnt/$p/file$i"
    done
done
zpool sync
pool_sums >"$RECORDS/sums"

# Bad blocks: BAD_BLOCKS 4 KiB blocks holding data, spread over a 4 MiB window past the labels.
# The two halves of the mirror get disjoint windows (a mirror keeps both copies at the same
# offset); ZFS keeps the two copies of copies=2 at least 1/8 of the device apart, so a 4 MiB
# window never holds both copies of a block.
echo "== injecting bad blocks under the main devices (dm-dust, $BLOCK-byte blocks)"
drop_caches
python3 - "$BLOCK" "$BAD_BLOCKS" "$RECORDS" <<'EOF'
import sys
block, count, records = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
MiB = 1 << 20
window = 4 * MiB // block

def nonzero(dev):
    with open(dev, 'rb', buffering=0) as f:
        data = f.read()
    first, last = 4 * MiB // block, (len(data) - MiB) // block
    zero = bytes(block)
    return [b for b in range(first, last) if data[b * block:(b + 1) * block] != zero]

def choose(blocks, start):
    # The first window from block `start` on (in 1 MiB steps) holding `count` data blocks.
    step = MiB // block
    w = start
    while w + window <= blocks[-1] + 1:
        inside = [b for b in blocks if w <= b < w + window]
        if len(inside) >= count:
            return w, [inside[i * len(inside) // count] for i in range(count)]
        w += step
    sys.exit(f"no {window}-block window with {count} data blocks from block {start}")

a_blocks = nonzero('/dev/mapper/main_a')
wa, bad_a = choose(a_blocks, 0)
_, bad_b = choose(nonzero('/dev/mapper/main_b'), wa + window)
_, bad_c = choose(nonzero('/dev/mapper/main_c'), 0)
for name, bad in (('a', bad_a), ('b', bad_b), ('c', bad_c)):
    with open(f'{records}/bad_{name}', 'w') as f:
        f.write(' '.join(map(str, bad)) + '\n')
EOF
injected=0
for x in "${DEVS[@]}"; do
    read -ra bad <"$RECORDS/bad_$x"
    add_bad "$x" "${bad[@]}"
    injected=$((injected + ${#bad[@]}))
    echo "  dust_$x: ${#bad[@]} bad blocks: ${bad[*]}"
done

echo "== scrub 1: ZFS reads the errors and rewrites from its redundancy"
for p in "${POOLS[@]}"; do
    zpool scrub -w "$p"
    zpool status "$p" | sed 's/^/  /'
    rep=$(repaired "$p")
    [[ -n $rep && $rep != 0B ]] || fail "$p: the scrub repaired nothing ($(scan_line "$p"))"
    assert_eq "$(errors_line "$p")" "No known data errors" "$p: data errors after scrub 1"
    echo "  $p: ZFS repaired $rep"
done
remapped=0
for x in "${DEVS[@]}"; do
    r=$(field "$x" 3) pend=$(field "$x" 4)
    echo "  remap_$x: remaps $r, pending $pend, read errors $(field "$x" 6), write errors $(field "$x" 7), remap failures $(field "$x" 8), health $(field "$x" 9)"
    (($(field "$x" 6) > 0)) || fail "remap_$x: no read error reached ZFS"
    ((r > 0)) || fail "remap_$x: ZFS's rewrites were not remapped"
    assert_eq "$pend" 0 "remap_$x: units still pending (a failed read no rewrite healed)"
    assert_eq "$(field "$x" 8)" 0 "remap_$x: remap failures"
    remapped=$((remapped + r))
done
echo "FIGURES bad 4 KiB blocks injected: $injected; units remapped: $remapped; repaired: remapmirror $(repaired remapmirror), remapcopies $(repaired remapcopies)"

echo "== scrub 2: clean"
for p in "${POOLS[@]}"; do
    zpool clear "$p"
    assert_clean_scrub "$p"
done

echo "== export, dmsetup remove, dmsetup create, import"
pools_export
# ZFS's own writes may still land on bad blocks (and be remapped) until the export.
for x in "${DEVS[@]}"; do
    field "$x" 3 >"$RECORDS/remaps_$x"
    dmsetup remove "remap_$x"
done
for x in "${DEVS[@]}"; do
    remap_up "$x"
    assert_eq "$(field "$x" 3)" "$(cat "$RECORDS/remaps_$x")" "remap_$x: remaps after remove/create"
done
pools_import
assert_eq "$(pool_sums)" "$(cat "$RECORDS/sums")" "file checksums after export/import"
echo "  $(wc -l <"$RECORDS/sums") files match their checksums"
for p in "${POOLS[@]}"; do
    assert_eq "$(errors_line "$p")" "No known data errors" "$p: data errors after import"
done

# Clean end of boot 1: pools exported, devices removed; boot 2 finds the same bad blocks again.
pools_export
for x in "${DEVS[@]}"; do
    field "$x" 3 >"$RECORDS/remaps_$x"
    dmsetup remove "remap_$x" "dust_$x" "main_$x" "spare_$x"
done
records_save
! kernel_trouble || fail "the kernel logged trouble (above)"
echo "boot 1 done"
