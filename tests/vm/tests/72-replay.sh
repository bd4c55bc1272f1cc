# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Exhaustive crash check: a remap-heavy workload is recorded by dm-log-writes, then replayed to
# every crash point (each FLUSH and FUA the disks saw, and each moment the workload was told a
# flush or a FUA write completed); at each point the target must reassemble over the disks as
# they were then and every acknowledged-durable write must read back exactly
# (tests/vm/replay-check.py states the rule).
#
# One log orders the writes of both devices, so main and spare are slices of one dm-log-writes
# device (data on $MAIN, log on $SCRATCH):
#
#   r0 (dm-remap) ── dust (dm-dust) ── mainraw (linear, 40 MiB) ──┐
#      └──────────── spare (linear, 8 MiB) ───────────────────────┴─ lw (log-writes) = vda, log on vdc
#
# The replay writes the log onto the zeroed $MAIN and, at each point, copies main and spare to
# two slices of $SPARE, where the target is created, checked and removed again. REPLAY_OPS sets
# the number of operations (default 25: about 180 points; `--env REPLAY_OPS=600` for the
# full form: over 200 remaps, 50 unremaps and 4000 points); REPLAY_SEED replays a run.

RP_CHECK=$DMR_REPO/tests/vm/replay-check.py
RP_MAIN=$((40 * MiB / 512))
RP_SPARE=$((8 * MiB / 512))

test_replay_every_flush_and_fua_point() {
    local ops=${REPLAY_OPS:-25} seed=${REPLAY_SEED:-$RANDOM} out
    [[ $ops =~ ^[1-9][0-9]*$ ]] || fail "REPLAY_OPS must be a positive number, not '$ops'"
    echo "replay: $ops operations, seed $seed (REPLAY_SEED=$seed replays the random choices)"
    dmr_load
    dmsetup create lw --table "0 $((RP_MAIN + RP_SPARE)) log-writes $MAIN $SCRATCH"
    linear mainraw /dev/mapper/lw "$RP_MAIN" >/dev/null
    linear spare /dev/mapper/lw "$RP_SPARE" "$RP_MAIN" >/dev/null
    dust_on dust /dev/mapper/mainraw "$RP_MAIN" >/dev/null
    dmsetup create r0 --table "0 $RP_MAIN $TARGET /dev/mapper/dust /dev/mapper/spare"
    # A crash while the spare is formatted leaves a device that was never created: no promise.
    dmsetup message lw 0 mark created
    out=$(python3 "$RP_CHECK" workload --dev /dev/mapper/r0 --target r0 --dust dust --log lw \
        --ops "$ops" --seed "$seed" --out run.json) || fail "the workload failed: $out"
    echo "workload: $out"
    # Removal commits the metadata; removing lw logs what is still unflushed and the entry count.
    dmsetup remove r0 dust mainraw spare
    echo "log: $(dmsetup status lw | cut -d' ' -f4-) (entries, next sector)"
    dmsetup remove lw

    blkdiscard -z -o 0 -l $(((RP_MAIN + RP_SPARE) * 512)) "$MAIN"
    linear cmain "$SPARE" "$RP_MAIN" >/dev/null
    linear cspare "$SPARE" "$RP_SPARE" "$RP_MAIN" >/dev/null
    if ! out=$(python3 "$RP_CHECK" replay --log-dev "$SCRATCH" --data-dev "$MAIN" \
        --copy-main /dev/mapper/cmain --copy-spare /dev/mapper/cspare --main-sectors "$RP_MAIN" \
        --spare-sectors "$RP_SPARE" --target "$TARGET" --run run.json 2>&1); then
        echo "$out"
        cp run.json "$VM_RESULTS/replay-run.json" || true
        fail "seed $seed: $(grep -m1 '^replay-check: ' <<<"$out" | cut -c15-)"
    fi
    echo "replay: $out"
    local points
    points=$(sed -En 's/^points=([0-9]+) .*/\1/p' <<<"$out")
    ((points >= ops / 2)) || fail "only $points crash points for $ops operations"
}
