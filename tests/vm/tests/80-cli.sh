# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# The operator tool `dm-remap` (tools/dm-remap) against the real module: create/remove and
# their refusals, status --json against status and sysfs, dump against the module's own list,
# repair accepted by the module, discover --create after a module reload, import of a
# badblocks list and a ddrescue mapfile, status's exit status by health (pending, spare low,
# spare full), its JSON disk identities and Prometheus metrics, the message verbs (unremap,
# clear-pending, commit, scan) and the message pass-through. The tool is built on the host (scripts/test, phase
# cli) and named by DMR_CLI (tests/vm/run --env DMR_CLI=/abs/path/dm-remap), an absolute path
# or one relative to the repository (a host path under /tmp is hidden in the guest).

# Runs the tool; fails the test if it was not given.
cli() {
    local bin=${DMR_CLI:-}
    [[ -n $bin ]] || fail "DMR_CLI is not set (tests/vm/run --env DMR_CLI=/abs/path/dm-remap)"
    [[ $bin == /* ]] || bin=$DMR_REPO/$bin
    [[ -x $bin ]] || fail "DMR_CLI=$DMR_CLI ($bin) is not an executable"
    "$bin" "$@"
}

# Runs the tool and asserts its exit status; its stderr goes to ./err.
expect_exit() { # STATUS ARGS...
    local want=$1 rc=0
    shift
    cli "$@" >out 2>err || rc=$?
    assert_eq "$rc" "$want" "exit status of dm-remap $* (stderr: $(cat err))"
}

# A JSON value: python3 expression EXPR over `d` (the parsed JSON on stdin).
json() { # EXPR
    python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

# r0 over dust over MAIN with remapped sectors (1000, 5000), a pending one (90000) and one
# remapped by message (200000); its list in ./list.
cli_remapped_device() {
    local main s
    main=$(dust_main)
    for s in 1000 5000; do dmsetup message dust 0 addbadblock $s 255; done
    dmsetup message dust 0 addbadblock 90000
    cli create r0 "$main" "$SPARE" >/dev/null
    random_file data 1
    write_at data /dev/mapper/r0 $((512 * 1000)) direct
    write_at data /dev/mapper/r0 $((512 * 4096)) direct
    ! dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=90000 count=1 iflag=direct status=none 2>/dev/null ||
        fail "the read of bad sector 90000 succeeded"
    dmsetup message r0 0 remap 200000 >/dev/null
    dmsetup message r0 0 list >list
    assert_eq "$(cut -d' ' -f1 list | tr '\n' ' ')" "1000 5000 90000 200000 " "listed sectors"
}

test_cli_create_status_remove() {
    dmr_load
    cli create r0 "$MAIN" "$SPARE" | tee out
    assert_match "$(cat out)" "created /dev/mapper/r0 .*spare formatted" "create output"
    [[ -b /dev/mapper/r0 ]] || fail "no /dev/mapper/r0 node"
    assert_eq "$(dmsetup table r0)" "0 $(sectors "$MAIN") $TARGET $(devno "$MAIN") $(devno "$SPARE")" "table"
    dmsetup message r0 0 remap 4096 >/dev/null
    cli status | tee out
    assert_match "$(cat out)" "^NAME.*"$'\n'"r0 +ok +1 +0 " "status table"
    cli status r0 --json >status.json
    local st field name index
    local -a f
    st=$(dmsetup status r0 | cut -d' ' -f4-)
    read -r -a f <<<"$st"
    # f[0] is the layout version; the fields follow in docs/status.md order.
    for field in "unit_sectors 1" "remaps 2" "pending 3" "read_errors 5" "write_errors 6" \
        "remap_failures 7" "health 8" "metadata_seq 9" "metadata_repairs 11" "metadata_errors 12" \
        "metadata_mode 15"; do
        read -r name index <<<"$field"
        assert_eq "$(json "d['$name']" <status.json)" "${f[index]}" "status --json $name against dmsetup status"
    done
    assert_eq "$(json "'%d/%d' % (d['spare_used'], d['spare_total'])" <status.json)" "${f[4]}" "spare use"
    assert_eq "$(json "d['sectors']" <status.json)" "$(sectors "$MAIN")" "sectors"
    local dir
    dir=/sys/kernel/dm-remap-v4/$(json "d['kernel_name']" <status.json)
    if [[ -d $dir ]]; then
        for field in remaps pending spare_used spare_total health metadata_seq metadata_mode; do
            assert_eq "$(json "d['sysfs']['$field']" <status.json)" "$(cat "$dir/$field")" "sysfs $field"
            assert_eq "$(json "d['$field']" <status.json)" "$(cat "$dir/$field")" "status field $field against sysfs"
        done
    else
        echo "note: the module has no sysfs folder $dir; sysfs not compared"
        assert_eq "$(json "d['sysfs']" <status.json)" None "sysfs in JSON without a folder"
    fi
    cli list r0 --json | json "[(e['sector'], e['state']) for e in d]" >out
    assert_eq "$(cat out)" "[(4096, 'remapped')]" "list --json"
    cli remove r0
    [[ ! -e /dev/mapper/r0 ]] || fail "/dev/mapper/r0 left behind"
    expect_exit 10 remove r0
    expect_exit 10 status r0
}

test_cli_create_refusals() {
    local before
    expect_exit 9 create r0 "$MAIN" "$SPARE" # no module: the target is unknown
    assert_match "$(cat err)" "dm-remap-v4 target is not loaded" "message without the module"
    dmr_load
    expect_exit 4 create r0 "$MAIN" "$MAIN"
    assert_eq "$(cat err)" "dm-remap: Main and spare are the same device" "same device"
    linear tiny "$SCRATCH" 5000 >/dev/null
    expect_exit 4 create r0 "$MAIN" /dev/mapper/tiny
    assert_eq "$(cat err)" "dm-remap: Spare device too small" "small spare"
    cli create r0 "$MAIN" "$SPARE" --dry-run >out
    assert_eq "$(cat out)" "0 $(sectors "$MAIN") $TARGET $(devno "$MAIN") $(devno "$SPARE")" "--dry-run table line"
    ! dmsetup info r0 >/dev/null 2>&1 || fail "--dry-run created a device"
    head -c 1M /dev/urandom | dd of="$SPARE" bs=1M oflag=direct status=none
    before=$(sha_at "$SPARE" 0 $((16 * MiB)) direct)
    expect_exit 4 create r0 "$MAIN" "$SPARE"
    assert_eq "$(cat err)" "dm-remap: Spare holds foreign data (add the 'format' feature to overwrite it)" "foreign"
    assert_eq "$(sha_at "$SPARE" 0 $((16 * MiB)) direct)" "$before" "spare untouched after the refusal"
    cli create r0 "$MAIN" "$SPARE" --format >/dev/null
    assert_match "$(dmsetup table r0)" " 1 format$" "table with the format feature"
    cli remove r0
    # The spare now belongs to MAIN: another main device is refused with the kernel's words.
    local other
    other=$(linear other "$SCRATCH" 400000)
    expect_exit 4 create r1 "$other" "$SPARE"
    assert_eq "$(cat err)" "dm-remap: Spare belongs to another main device" "another main"
    expect_exit 3 create r1 /dev/nonexistent "$SPARE"
    ! dmsetup info r1 >/dev/null 2>&1 || fail "a refused create left a device"
}

test_cli_dump_reads_what_the_module_wrote() {
    dmr_load
    cli_remapped_device
    cli remove r0
    cli dump "$SPARE" >dump
    sed -n '/^entries (/,$p' dump | tail -n +2 >dump.list
    assert_eq "$(cat dump.list)" "$(cat list)" "dump entries against the module's list"
    cli create r0 /dev/mapper/dust "$SPARE" >/dev/null
    assert_eq "$(dmsetup message r0 0 list)" "$(cat list)" "list after recreate"
    local seq
    seq=$(dmr_status_field r0 10)
    assert_eq "$(dmr_status_field r0 12)" 0 "repairs at recreate"
    cli dump "$SPARE" --json >dump.json
    assert_eq "$(json "d['superblock']['seq']" <dump.json)" "$seq" "dump seq against status"
    assert_eq "$(json "len(d['entries'])" <dump.json)" 4 "entries in dump --json"
    assert_eq "$(json "[c['state'] for c in d['copies']]" <dump.json)" \
        "['current', 'current', 'current', 'current', 'current']" "copies"
    cli check "$SPARE" | tee out
    assert_match "$(cat out)" "metadata ok: 5 of 5 copies current" "check of a live spare"
}

# Copy start sectors of the metadata (9C sectors before the data area) from dump --json.
copy_starts_from_dump() { # SPARE
    cli dump "$1" --json | json "' '.join(str(c['sector']) for c in d['copies'])"
}

test_cli_repair_is_accepted_by_the_module() {
    local starts before
    dmr_load
    cli_remapped_device
    read -r -a starts <<<"$(copy_starts_from_dump "$SPARE")"
    # Live: repair refuses to touch the spare.
    before=$(sha_at "$SPARE" 0 $((9 * MiB)) direct)
    expect_exit 8 repair "$SPARE"
    assert_eq "$(sha_at "$SPARE" 0 $((9 * MiB)) direct)" "$before" "live spare untouched by repair"
    cli remove r0
    # Damage copy 2's superblock (one bit) and copy 3's first remap block.
    python3 - "$SPARE" $((starts[2] * 512 + 100)) $(((starts[3] + 8) * 512 + 7)) <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for off in map(int, sys.argv[2:]):
    os.pwrite(fd, bytes([os.pread(fd, 1, off)[0] ^ 1]), off)
os.fsync(fd)
PY
    expect_exit 5 check "$SPARE"
    assert_match "$(cat out)" "copy 2 at sector ${starts[2]}: damaged" "check names copy 2"
    assert_match "$(cat out)" "copy 3 at sector ${starts[3]}: damaged" "check names copy 3"
    cli repair "$SPARE" | tee out
    assert_match "$(cat out)" "rewrote copies \[2, 3\]" "repair output"
    cli check "$SPARE" >/dev/null
    cli create r0 /dev/mapper/dust "$SPARE" >/dev/null
    assert_eq "$(dmr_status_field r0 12)" 0 "copies the module had to repair after dm-remap repair"
    assert_eq "$(dmr_status_field r0 11)" 5/5 "copies"
    assert_eq "$(dmsetup message r0 0 list)" "$(cat list)" "list after repair"
}

test_cli_repair_refuses_all_damaged() {
    local starts s before
    dmr_load
    cli_remapped_device
    read -r -a starts <<<"$(copy_starts_from_dump "$SPARE")"
    cli remove r0
    for s in "${starts[@]}"; do
        head -c 4096 /dev/urandom | dd of="$SPARE" bs=4096 seek=$((s / 8)) oflag=direct status=none
    done
    before=$(sha_at "$SPARE" 0 $((9 * MiB)) direct)
    expect_exit 6 check "$SPARE"
    expect_exit 6 repair "$SPARE"
    assert_match "$(cat err)" "nothing written" "repair refusal"
    assert_eq "$(sha_at "$SPARE" 0 $((9 * MiB)) direct)" "$before" "spare untouched"
    expect_exit 4 create r0 /dev/mapper/dust "$SPARE"
    assert_eq "$(cat err)" "dm-remap: All metadata copies are invalid" "create refusal"
}

test_cli_discover_create_reassembles() {
    local uuid main
    dmr_load
    # A main of a size no other disk has, so that discover can pair it alone.
    main=$(linear lin "$MAIN" 300000)
    cli create r0 "$main" "$SPARE" >/dev/null
    random_file data 1
    write_at data /dev/mapper/r0 $((512 * 2048)) direct
    dmsetup message r0 0 remap 2048 >/dev/null
    dmsetup message r0 0 list >list
    cli discover | tee out
    grep -qE "^active +$SPARE .* name=r0" out || fail "discover does not show r0 as active: $(cat out)"
    uuid=$(cli dump "$SPARE" --json | json "d['superblock']['uuid']")
    cli remove r0
    dmr_unload
    dmr_load
    cli discover --remaptab /nonexistent | tee out
    grep -qE "^ready +$SPARE uuid=$uuid .* main=$main name=remap-${uuid:0:8}" out || fail "not ready: $(cat out)"
    assert_match "$(cat out)" "table remap-${uuid:0:8}: 0 300000 $TARGET $(devno "$main") $(devno "$SPARE")" "table line"
    [[ ! -e /dev/mapper/remap-${uuid:0:8} ]] || fail "discover without --create created a device"
    # Boot-time assembly takes only what the remaptab lists.
    : >empty
    cli discover --create --listed-only --remaptab empty | tee out
    grep -qE "^unlisted +$SPARE " out || fail "not reported as unlisted: $(cat out)"
    [[ ! -e /dev/mapper/remap-${uuid:0:8} ]] || fail "--listed-only assembled an unlisted spare"
    cli discover --create --remaptab /nonexistent >/dev/null
    assert_eq "$(dmsetup message "remap-${uuid:0:8}" 0 list)" "$(cat list)" "list after discover --create"
    assert_data data "/dev/mapper/remap-${uuid:0:8}" $((512 * 2048)) direct
    cli remove "remap-${uuid:0:8}"

    # Named in a remaptab by UUID; a main of the wrong size there is a mismatch, never assembled.
    linear short "$MAIN" 200000 >/dev/null
    echo "wrong /dev/mapper/short UUID=$uuid" >tab
    expect_exit 12 discover --create --remaptab tab
    grep -qE "^mismatch +$SPARE .*name=wrong" out || fail "no mismatch reported: $(cat out)"
    ! dmsetup info wrong >/dev/null 2>&1 || fail "a mismatched pair was assembled"
    echo "data $main UUID=$uuid -" >tab
    cli discover --create --remaptab tab >/dev/null
    assert_eq "$(dmsetup message data 0 list)" "$(cat list)" "list of the remaptab device"
    cli remove data
}

test_cli_discover_reports_ambiguous_pairs() {
    dmr_load
    # MAIN and SCRATCH are both 256 MiB: the fingerprint cannot tell them apart.
    cli create r0 "$MAIN" "$SPARE" >/dev/null
    cli remove r0
    expect_exit 12 discover --create --remaptab /nonexistent
    # (Other disks may be reported too, e.g. a null_blk device that returns stale pages.)
    grep -qE "^ambiguous +$SPARE .*main=$MAIN,$SCRATCH" out || fail "no ambiguous pair in: $(cat out)"
    [[ -z $(dmsetup ls --target "$TARGET" | grep -v 'No devices') ]] || fail "an ambiguous pair was assembled"
    cli discover --json --remaptab /nonexistent >out.json || true
    assert_eq "$(json "[f['state'] for f in d if f['spare'] == '$SPARE']" <out.json)" "['ambiguous']" "discover --json"
}

test_cli_import_badblocks_gives_exactly_those_pending() {
    local main s
    dmr_load
    main=$(dust_main)
    # badblocks -o lists 1024-byte blocks: block 500 is sectors 1000-1001, 2000 is 4000-4001.
    for s in 1000 1001 4000 4001; do dmsetup message dust 0 addbadblock $s; done
    printf '500\n2000\n' >bb.txt
    cli create r0 "$main" "$SPARE" >/dev/null
    cli import r0 --badblocks bb.txt | tee out
    assert_match "$(cat out)" "imported 4 units: 0 remapped, 4 pending" "import report"
    assert_eq "$(dmsetup message r0 0 list | tr '\n' ' ')" \
        "1000 pending 1001 pending 4000 pending 4001 pending " "pending units after import"
    assert_eq "$(dmr_status_field r0 4)" 4 "pending in status"
    # A ddrescue mapfile: a failed area main can still read (now) is copied to the spare.
    printf '# Mapfile\n0x0 +\n0x0 0x100000 +\n0x100000 0x400 -\n0x100400 0x1000 ?\n' >map
    cli import r0 --ddrescue-map map | tee out
    assert_match "$(cat out)" "imported 2 units: 2 remapped, 0 pending" "mapfile import"
    assert_match "$(dmsetup message r0 0 list | tr '\n' ' ')" "^1000 pending 1001 pending 2048 [0-9]+ 2049 [0-9]+ 4000 pending" "list after mapfile"
    expect_exit 11 import r0 --badblocks map
    printf '999999999\n' >far.txt
    expect_exit 11 import r0 --badblocks far.txt
    assert_match "$(cat err)" "beyond the device" "a block past the end"
}

# Sends `remap` messages for N units from sector FIRST on (8 sectors apart) to r0.
remap_units() { # FIRST N
    local i
    for ((i = 0; i < $2; i++)); do echo "remap $(($1 + i * 8))"; done | dm_messages r0 >/dev/null
}

test_cli_status_exits_by_health() {
    local spare main units low
    dmr_load
    # The smallest spare (1024 data units), so that it fills quickly.
    spare=$(linear small "$SCRATCH" 10240)
    main=$(dust_main)
    cli create r0 "$main" "$spare" >/dev/null
    expect_exit 0 status r0
    expect_exit 0 -q status
    assert_eq "$(cat out)" "" "-q prints nothing"
    # A read error over a bad sector: the unit is pending, the device degraded.
    dmsetup message dust 0 addbadblock 4000
    ! dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=4000 count=1 iflag=direct status=none 2>/dev/null ||
        fail "the read of bad sector 4000 succeeded"
    expect_exit 20 status r0
    assert_match "$(cat out)" $'\n''r0 +degraded +0 +1 ' "status table of a degraded device"
    assert_eq "$(cat err)" "" "stderr of a health exit"
    expect_exit 20 status r0 --json
    assert_eq "$(json "(d['schema_version'], d['health'], d['pending'])" <out)" "(1, 'degraded', 1)" "status --json"
    expect_exit 20 status --json
    assert_eq "$(json "[e['health'] for e in d]" <out)" "['degraded']" "status --json of all devices"
    # --prometheus exits 0 whatever the health: the health is in the metrics.
    expect_exit 0 status --prometheus
    grep -qx 'dm_remap_health{device="r0",health="degraded"} 1' out || fail "no degraded health series: $(cat out)"
    grep -qx 'dm_remap_health{device="r0",health="ok"} 0' out || fail "no ok health series: $(cat out)"
    grep -qx 'dm_remap_pending_units{device="r0"} 1' out || fail "no pending gauge: $(cat out)"
    grep -qx 'dm_remap_read_errors_total{device="r0"} 1' out || fail "no read error counter: $(cat out)"
    # clear-pending forgets the failed read: ok again (a read error is not a remap failure).
    cli clear-pending r0 4000 | tee out
    assert_match "$(cat out)" "unit at sector 4000 is no longer pending" "clear-pending output"
    assert_eq "$(dmr_status_field r0 4)" 0 "pending after clear-pending"
    cli clear-pending r0 4000 | tee out
    assert_match "$(cat out)" "unit at sector 4000 was not pending; nothing changed" "clear-pending of a unit not pending"
    expect_exit 0 status r0
    # 90 % of the spare used: spare_low; all of it: spare_full.
    units=$(dmr_status_field r0 5 | cut -d/ -f2)
    low=$((units * 9 / 10 + 1))
    remap_units 100000 "$low"
    assert_eq "$(dmr_status_field r0 9)" spare_low "module health at $low of $units units"
    expect_exit 21 status r0
    remap_units $((100000 + low * 8)) $((units - low))
    assert_eq "$(dmr_status_field r0 9)" spare_full "module health with the spare full"
    expect_exit 22 status
    expect_exit 22 -q status r0 --json
    assert_eq "$(cat out)" "" "-q --json prints nothing"
    expect_exit 0 status --prometheus
    grep -qx 'dm_remap_health{device="r0",health="spare_full"} 1' out || fail "no spare_full series: $(cat out)"
    grep -qx "dm_remap_spare_used_units{device=\"r0\"} $units" out || fail "spare use: $(cat out)"
    # An error of the command is not a health code.
    expect_exit 10 status r1
    assert_eq "$(cat err)" "dm-remap: r1: no such dm device" "status of a missing device"
}

test_cli_status_json_names_the_disks() {
    local uuid
    dmr_load
    cli create r0 "$MAIN" "$SPARE" >/dev/null
    uuid=$(cli dump "$SPARE" --json | json "d['superblock']['uuid']")
    # No udev in the guest: a by-id link made by hand, as udev would make it.
    mkdir -p /dev/disk/by-id
    ln -sf "$SPARE" /dev/disk/by-id/virtio-dmr-test-spare
    cli status r0 --json >st.json
    rm -f /dev/disk/by-id/virtio-dmr-test-spare
    assert_eq "$(json "d['schema_version']" <st.json)" 1 "schema version"
    assert_eq "$(json "(d['main']['devno'], d['main']['path'], d['main']['by_id'])" <st.json)" \
        "('$(devno "$MAIN")', '$MAIN', [])" "main disk"
    assert_eq "$(json "(d['spare']['devno'], d['spare']['path'], d['spare']['by_id'])" <st.json)" \
        "('$(devno "$SPARE")', '$SPARE', ['/dev/disk/by-id/virtio-dmr-test-spare'])" "spare disk"
    assert_eq "$(json "d['spare_uuid']" <st.json)" "$uuid" "spare UUID against dump"
    cli status --prometheus >metrics
    grep -qx "dm_remap_device_info{device=\"r0\",kernel_name=\"$(json "d['kernel_name']" <st.json)\",main=\"$MAIN\",spare=\"$SPARE\",spare_uuid=\"$uuid\"} 1" metrics ||
        fail "device_info: $(grep device_info metrics)"
    grep -qx "dm_remap_size_bytes{device=\"r0\"} $(($(sectors "$MAIN") * 512))" metrics || fail "size: $(cat metrics)"
    grep -qx "dm_remap_metadata_copies{device=\"r0\"} 5" metrics || fail "copies: $(cat metrics)"
    cli remove r0
}

test_cli_message_verbs() {
    local main at=102400
    dmr_load
    main=$(dust_main)
    cli create r0 "$main" "$SPARE" >/dev/null
    random_file data 1
    write_at data /dev/mapper/r0 $((at * 512)) direct
    # Many messages through one process; each reply as the kernel gives it.
    printf 'remap %s\n' $at $((at + 8)) $((at + 16)) | cli message r0 >out
    assert_eq "$(cut -d' ' -f1 out | tr '\n' ' ')" "$at $((at + 8)) $((at + 16)) " "replies of the remaps"
    assert_eq "$(cli message r0 list)" "$(dmsetup message r0 0 list)" "list through message"
    assert_eq "$(cli message r0 list $((at + 8)) 1)" "$(dmsetup message r0 0 list $((at + 8)) 1)" "list with arguments"
    assert_eq "$(cli message r0 help)" "$(dmsetup message r0 0 help)" "help"
    assert_eq "$(cli -q message r0 list)" "" "-q message"
    # unremap copies the unit back to main: what was written while it was remapped.
    head -c 512 /dev/urandom >one
    write_at one /dev/mapper/r0 $(((at + 8) * 512)) direct
    cli unremap r0 $((at + 8)) | tee out
    assert_match "$(cat out)" "r0: unit at sector $((at + 8)) copied back to main and unremapped" "unremap output"
    assert_eq "$(dmsetup message r0 0 list | cut -d' ' -f1 | tr '\n' ' ')" "$at $((at + 16)) " "list after unremap"
    drop_caches
    assert_data one "$MAIN" $(((at + 8) * 512)) direct
    expect_exit 4 unremap r0 $((at + 8))
    assert_eq "$(cat err)" "dm-remap: r0: 'unremap $((at + 8))' refused: Sector is not remapped (EINVAL)" "unremap of a unit not remapped"
    expect_exit 4 unremap r0 999999999
    assert_eq "$(cat err)" "dm-remap: r0: 'unremap 999999999' refused: Sector beyond the end of the target" "unremap past the end"
    # Main still failing there: the remap stays.
    dmsetup message dust 0 addbadblock $at 10
    expect_exit 3 unremap r0 $at
    assert_match "$(cat err)" "Main device still fails at this sector, or the spare unit cannot be read; the remap stays \(EIO\)" "unremap over a failing main"
    assert_match "$(dmsetup message r0 0 list | head -1)" "^$at [0-9]+$" "the remap stays"
    # commit prints the sequence number the status line then shows.
    cli commit r0 | tee out
    assert_eq "$(cat out)" "r0: metadata committed (sequence $(dmr_status_field r0 10), 5/5 copies)" "commit output"
    # scan stop/start/now.
    cli scan stop r0 | tee out
    assert_match "$(cat out)" "^r0: scanning disabled \(scan state: off " "scan stop"
    assert_eq "$(dmr_status_field r0 14)" off "scan state after stop"
    cli scan now r0 | tee out
    assert_match "$(cat out)" "^r0: a new pass started from sector 0" "scan now"
    cli scan start r0 | tee out
    assert_match "$(cat out)" "^r0: scanning enabled \(scan state: (idle|scanning) " "scan start"
    cli scan stop r0 >/dev/null
    # The pass-through stops at the first refused message, after printing the replies before it.
    printf 'list %s 1\n\nfrobnicate\nlist\n' $at >messages
    expect_exit 4 message r0 <messages
    assert_eq "$(cat out)" "$(dmsetup message r0 0 list $at 1)" "output before the refusal"
    assert_eq "$(cat err)" "dm-remap: r0: 'frobnicate' refused: Unknown message verb (try 'help') (EINVAL) (line 3; 1 messages before it were sent)" "refusal"
    # lib.sh's dm_messages sends through the tool here (its refusal is the tool's).
    ! echo frobnicate | dm_messages r0 2>err || fail "dm_messages accepted an unknown verb"
    assert_match "$(cat err)" "^dm-remap: r0: 'frobnicate' refused" "dm_messages through the tool"
    expect_exit 10 message dust list
    assert_eq "$(cat err)" "dm-remap: dust: not a $TARGET device" "message to another target"
    expect_exit 10 commit r1
    cli remove r0
}
