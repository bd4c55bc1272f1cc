#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot 2 of tests/vm/reboot-test, in the guest, on the disks of boot 1: for each variant, re-add
# the bad sectors, create the dm-remap device again and compare its remap list, the checksum of
# its data and its metadata state with what boot 1 recorded on the scratch disk. Writes
# "ok reboot_<variant>" or "FAIL reboot_<variant>: reason" lines to $VM_RESULTS/reboot.txt.
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$DMR_REPO/tests/vm/reboot/common.sh"

# Boot-time assembly as dm-remap-assemble.service does it: a remaptab naming the spare by the
# UUID in its metadata, then `dm-remap discover --create --listed-only`.
assemble_with_cli() { # VARIANT
    local cli=$DMR_CLI uuid
    [[ $cli == /* ]] || cli=$DMR_REPO/$cli
    uuid=$("$cli" dump "$SPARE" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["superblock"]["uuid"])')
    echo "$1 /dev/mapper/dust_$1 UUID=$uuid" >remaptab
    "$cli" discover --create --listed-only --remaptab remaptab || fail "dm-remap discover --create failed"
    echo "$1: assembled by dm-remap discover --create"
}

check_variant() { # VARIANT
    local v=$1
    lower_up "$v"
    grep -E '^[0-9]+$' "$RECORDS/$v.bad" | sed 's/.*/addbadblock & 255/' | dm_messages "dust_$v"
    if [[ $v == clean && -n ${DMR_CLI:-} ]]; then
        assemble_with_cli "$v"
    else
        dmsetup create "$v" --table "$(remap_table "$v")" ||
            fail "does not load: $(dmesg | grep dm_remap | tail -n1)"
    fi
    dmsetup message "$v" 0 list >"$v.list"
    if ! cmp -s "$v.list" "$RECORDS/$v.list"; then
        # (diff exits 1 when the files differ: that is no error here)
        fail "remap list differs from boot 1's (<: boot 1, >: now):" \
            "$({ diff "$RECORDS/$v.list" "$v.list" || :; } | grep '^[<>]' | paste -sd' ')"
    fi
    drop_caches
    assert_eq "$(sha_at "/dev/mapper/$v" 0 "$CHECKED" direct)" "$(cat "$RECORDS/$v.sha")" \
        "sha256 of the first $((CHECKED / MiB)) MiB"
    assert_eq "$(field "$v" 11)" 5/5 "metadata copies"
    assert_eq "$(field "$v" 12)" 0 "metadata repairs at load"
    if [[ $v == live ]]; then
        assert_eq "$(field "$v" 10)" "$(cat "$RECORDS/live.seq")" "metadata seq (the last commit)"
    fi
    echo "$v: $(field "$v" 3) remaps, seq $(field "$v" 10), data and list as recorded"
    dmsetup remove "$v"
}

dmr_load
mkdir -p "$RECORDS"
tar -C "$RECORDS" -xf "$SCRATCH"
results=$VM_RESULTS/reboot.txt
: >"$results"
status=0
for v in "${VARIANTS[@]}"; do
    _TEST_REASON=/tmp/reason.$v
    : >"$_TEST_REASON"
    # A subshell per variant: a failure ends its checks, not the other variant's.
    set +e
    (
        set -eE
        trap 'echo "$BASH_COMMAND failed (status $?)" >>"$_TEST_REASON"' ERR
        check_variant "$v"
    )
    rc=$?
    set -e
    if ((rc == 0)); then
        echo "ok reboot_$v" | tee -a "$results"
    else
        echo "FAIL reboot_$v: $(head -n1 "$_TEST_REASON")" | tee -a "$results"
        status=1
    fi
done
exit $status
