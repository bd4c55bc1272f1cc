# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Crash consistency: power cuts during a remap-heavy write workload with periodic fsync. After
# each cut the device must reassemble, keep every remap and every write that a completed flush
# made durable (tests/vm/powercut-check.py says exactly what that means).
#
# Both disks must lose power at the same instant, so they sit under one dm-flakey device:
#
#   r0 (dm-remap) ── dust (dm-dust: bad sectors) ── mainraw (linear) ──┐
#      └──────────── spare (linear) ───────────────────────────────────┴─ cut ── both = vda + vdb
#
# `cut` is a linear device while the power is on; the cut replaces its table with dm-flakey's
# drop_writes (down from the start): every later write is acknowledged and thrown away, on both
# disks at once. The rounds run back to back on the same disks, each starting from the state the
# previous one left. POWERCUT_ROUNDS sets the number of cuts (default 12; `tests/vm/run
# --env POWERCUT_ROUNDS=100` for the full run); POWERCUT_SEED replays the random choices of a run
# (not its timing).

PC_CHECK=$DMR_REPO/tests/vm/powercut-check.py

# The table of `cut`: "on" passes everything, "off" drops every write.
pc_cut_table() { # on|off
    local len=$(($(sectors "$MAIN") + $(sectors "$SPARE")))
    case $1 in
    on) echo "0 $len linear /dev/mapper/both 0" ;;
    off) echo "0 $len flakey /dev/mapper/both 0 0 1000000 1 drop_writes" ;;
    esac
}

# Builds the stack under r0 with the power on and the dm-dust bad sectors listed in BADBLOCKS
# (the disk's bad sectors stay bad across a power cycle).
pc_stack_up() { # BADBLOCKS
    local m s
    m=$(sectors "$MAIN") s=$(sectors "$SPARE")
    dmsetup create both --table "0 $m linear $MAIN 0
$m $s linear $SPARE 0"
    dmsetup create cut --table "$(pc_cut_table on)"
    linear mainraw /dev/mapper/cut "$m" >/dev/null
    linear spare /dev/mapper/cut "$s" "$m" >/dev/null
    dust_on dust /dev/mapper/mainraw "$m" >/dev/null
    sed 's/.*/addbadblock & 255/' "$1" | dm_messages dust
}

# Creates r0 over the stack: it loads (or formats) the metadata on the spare.
pc_r0_up() {
    dmsetup create r0 --table "0 $(sectors "$MAIN") $TARGET /dev/mapper/dust /dev/mapper/spare"
}

# Removing r0 commits its metadata: with the power off, those writes vanish too.
pc_stack_down() {
    dmsetup remove r0 dust mainraw spare cut both
}

# The sectors dm-dust has as bad, one per line.
pc_badblocks() {
    echo listbadblocks | dm_messages dust | grep -E '^[0-9]+$' || true
}

test_powercut_reassembles_and_keeps_flushed_writes() {
    local rounds=${POWERCUT_ROUNDS:-12} seed=${POWERCUT_SEED:-$RANDOM} round out
    local reassembled=0 verified=0 repaired=0 remaps health seq copies repairs
    [[ $rounds =~ ^[1-9][0-9]*$ ]] || fail "POWERCUT_ROUNDS must be a positive number, not '$rounds'"
    echo "powercut: $rounds rounds, seed $seed (POWERCUT_SEED=$seed replays the random choices)"
    dmr_load
    : >bad
    pc_stack_up bad
    pc_r0_up
    dmsetup message r0 0 list >remaps.base
    for ((round = 1; round <= rounds; round++)); do
        dmsetup load cut --table "$(pc_cut_table off)"
        out=$(python3 "$PC_CHECK" workload --dev /dev/mapper/r0 --target r0 --dust dust \
            --seed $((seed * 1000 + round)) --first-version $((round * 100000000)) \
            --out run.json -- dmsetup resume cut) || fail "round $round: the workload failed: $out"
        echo "round $round: $out"
        pc_badblocks >bad.now
        pc_stack_down
        pc_stack_up bad.now
        if ! pc_r0_up; then
            pc_keep_evidence "$round"
            fail "round $round (seed $seed): r0 does not reassemble after the cut:" \
                "$(dmesg | grep dm_remap | tail -n2 | paste -sd' ')"
        fi
        reassembled=$((reassembled + 1))
        # INFO status fields 3, 9, 10-12: remaps, health, metadata seq, copies, repairs.
        read -r _ _ _ _ _ remaps _ _ _ _ _ health seq copies repairs _ <<<"$(dmsetup status r0)"
        [[ $health == ok || $health == degraded ]] || fail "round $round (seed $seed): health is '$health'"
        if [[ $copies != 5/5 || $repairs != 0 ]]; then
            repaired=$((repaired + 1))
        fi
        echo "round $round: reassembled: seq $seq, copies $copies, repairs $repairs," \
            "remaps $remaps, health $health"
        dmsetup message r0 0 list >remaps.now
        if ! out=$(python3 "$PC_CHECK" check --dev /dev/mapper/r0 --run run.json --state state.json \
            --base-list remaps.base --list remaps.now --bad-before bad --bad-now bad.now 2>&1); then
            echo "$out"
            pc_keep_evidence "$round"
            fail "round $round (seed $seed): $(grep -m1 '^powercut-check: ' <<<"$out" | cut -c17-)"
        fi
        echo "round $round: $out"
        verified=$((verified + $(sed -En 's/.*verified=([0-9]+).*/\1/p' <<<"$out")))
        mv remaps.now remaps.base
        mv bad.now bad
    done
    echo "powercut: $rounds cut points, $reassembled reassembled ($repaired with metadata repairs)," \
        "$verified writes verified, $(dmr_status_field r0 3) remaps at the last cut"
}

# Copies what explains a failure of ROUND to the results: the run, the lists, the metadata area.
pc_keep_evidence() { # ROUND
    local dir=$VM_RESULTS/powercut-round-$1
    mkdir -p "$dir"
    cp run.json remaps.* bad* state.json "$dir/" 2>/dev/null || true
    dd if="$SPARE" of="$dir/spare-metadata.img" bs=512 count=9216 status=none || true
    echo "evidence of round $1 in ${dir#"$VM_RESULTS"/} of the results"
}
