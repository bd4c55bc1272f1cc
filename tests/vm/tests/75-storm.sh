# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Fault storms: fio writes at random with iodepth 32 and verifies everything it wrote, while
#   - dm-dust adds and removes bad sectors on main at random (their writes fail: remapped),
#   - dm-flakey takes the spare down and up (all its I/O fails while down),
#   - the dm-remap device is suspended and resumed,
#   - messages (remap, unremap, list, stats, commit) run concurrently,
# and between rounds the device is removed and created again (the remaps and data must come
# back identical). Writes that fail are not acknowledged, and fio leaves them out of its
# verification; every acknowledged write must read back intact: 0 verify errors.
#
#   r0 (dm-remap) ── dust (dm-dust over $MAIN)
#      └──────────── flaky (dm-flakey over $SPARE)
#
# Each round fio writes every 4 KiB block of the first STORM_MIB MiB of r0 (default 48) once,
# in random order; the storm covers the first three quarters of those writes, then the faults
# stop (bad sectors cleared, spare up, device resumed) so that fio's verification reads a
# healthy device. STORM_ROUNDS (default 2) sets the rounds; `--env STORM_ROUNDS=20 --env
# STORM_MIB=128` is the long form (several minutes).

storm_flaky_table() { # up|down
    local s
    s=$(sectors "$SPARE")
    case $1 in
    up) echo "0 $s flakey $SPARE 0 1000000 0" ;;
    down) echo "0 $s flakey $SPARE 0 0 1000000" ;;
    esac
}

storm_reload() { # DEV TABLE
    dmsetup suspend "$1" && dmsetup reload "$1" --table "$2" && dmsetup resume "$1"
}

# The agents: each loops until ./stop exists, logging what it did to ./agent-NAME.log.
storm_dust_agent() {
    local units=$((${STORM_MIB:-48} * MiB / 512)) b
    while [[ ! -e stop ]]; do
        b=$(((RANDOM * 32768 + RANDOM) % units))
        if ((RANDOM % 3)); then
            dmsetup message dust 0 addbadblock "$b" $((1 + RANDOM % 4)) 2>/dev/null && echo "add $b"
        else
            dmsetup message dust 0 removebadblock "$b" 2>/dev/null && echo "remove $b"
        fi
        sleep 0.$((RANDOM % 3))
    done >agent-dust.log
}

storm_flaky_agent() {
    while [[ ! -e stop ]]; do
        storm_reload flaky "$(storm_flaky_table down)" && echo down
        sleep 0.$((RANDOM % 5))
        storm_reload flaky "$(storm_flaky_table up)" && echo up
        sleep 1.$((RANDOM % 9))
    done >agent-flaky.log 2>&1
}

storm_suspend_agent() {
    while [[ ! -e stop ]]; do
        sleep 1.$((RANDOM % 9))
        dmsetup suspend r0 && echo suspended
        sleep 0.$((RANDOM % 3))
        dmsetup resume r0 && echo resumed
    done >agent-suspend.log 2>&1
}

storm_message_agent() {
    local units=$((${STORM_MIB:-48} * MiB / 512)) s
    while [[ ! -e stop ]]; do
        s=$(((RANDOM * 32768 + RANDOM) % units))
        for m in "remap $s" "list" "stats" "unremap $s" "commit" "remap $((s / 2))"; do
            # Refusals (unit not remapped, spare down, ...) are expected; an oops is not.
            # shellcheck disable=SC2086 # the verb and its argument are two words
            dmsetup message r0 0 $m >/dev/null 2>&1 && echo "ok: $m" || echo "refused: $m"
        done
    done >agent-message.log
}

# Ends the storm once fio has written 3/4 of the round (or has exited): fio is stopped
# (SIGSTOP: it submits nothing more; what it has in flight completes) and the agents told to
# finish. storm_round heals the device and lets fio go on.
storm_conductor() { # FIO_PID BYTES
    local stat start now
    stat=/sys/dev/block/$(devno /dev/mapper/r0)/stat
    start=$(awk '{print $7}' "$stat")
    while kill -0 "$1" 2>/dev/null; do
        now=$(awk '{print $7}' "$stat")
        (((now - start) * 512 * 4 < $2 * 3)) || break
        sleep 0.2
    done
    kill -STOP "$1" 2>/dev/null || true
    touch stop
}

storm_round() { # ROUND
    local round=$1 bytes=$((${STORM_MIB:-48} * MiB)) fio_pid agents=() pid
    rm -f stop
    fio --name=storm --filename=/dev/mapper/r0 --ioengine=libaio --direct=1 --thread \
        --rw=randwrite --bs=4k --iodepth=32 --size="$bytes" --randrepeat=0 --randseed="$round" \
        --verify=crc32c --verify_fatal=1 --continue_on_error=write \
        --output-format=json --output=fio-$round.json &
    fio_pid=$!
    storm_dust_agent & agents+=($!)
    storm_flaky_agent & agents+=($!)
    storm_suspend_agent & agents+=($!)
    storm_message_agent & agents+=($!)
    storm_conductor "$fio_pid" "$bytes"
    for pid in "${agents[@]}"; do wait "$pid" || true; done
    # Healthy again before fio writes the rest and verifies.
    dmsetup resume r0
    storm_reload flaky "$(storm_flaky_table up)"
    dmsetup message dust 0 clearbadblocks >/dev/null 2>&1 || true
    kill -CONT "$fio_pid" 2>/dev/null || true
    wait "$fio_pid" || { cat "fio-$round.json"; fail "round $round: fio failed (verify error?)"; }
    # fio exits 0 (verify_fatal: a verify error would not); failed writes are expected (their
    # error is fio's "error"), and every acknowledged byte must have been read back verified.
    python3 - "fio-$round.json" "$round" <<'PY' | tee -a storm.summary
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
print(f"round {sys.argv[2]}: written={job['write']['io_bytes']} verified={job['read']['io_bytes']}"
      f" failed_writes={job.get('total_err', 0)} first_error={job['error']}")
PY
    tail -n1 storm.summary | awk '{split($3, w, "="); split($4, v, "="); exit !(w[2] > 0 && w[2] == v[2])}' ||
        fail "round $round: fio did not verify every acknowledged write"
    echo "round $round: $(grep -c . agent-dust.log) bad-sector changes," \
        "$(grep -c down agent-flaky.log) spare outages, $(grep -c suspended agent-suspend.log) suspends," \
        "$(grep -c . agent-message.log) messages ($(grep -c '^ok' agent-message.log) accepted)"
}

test_storm_faults_under_fio_verify() {
    local round rounds=${STORM_ROUNDS:-2} table before after list
    dmr_load
    dust_main >/dev/null
    dmsetup create flaky --table "$(storm_flaky_table up)"
    table="0 $(sectors "$MAIN") $TARGET /dev/mapper/dust /dev/mapper/flaky"
    dmsetup create r0 --table "$table"
    for ((round = 1; round <= rounds; round++)); do
        storm_round "$round"
        echo "status: $(dmsetup status r0)"
        # Remove and create again: the same remaps, the same bytes.
        list=$(dmsetup message r0 0 list)
        before=$(sha_at /dev/mapper/r0 0 $((${STORM_MIB:-48} * MiB)) direct)
        dmsetup remove r0
        dmsetup create r0 --table "$table"
        assert_eq "$(dmsetup message r0 0 list)" "$list" "round $round: remaps after re-creation"
        after=$(sha_at /dev/mapper/r0 0 $((${STORM_MIB:-48} * MiB)) direct)
        assert_eq "$after" "$before" "round $round: data after re-creation"
    done
    awk '{for (i = 1; i <= NF; i++) if ($i ~ /^verified=/) {split($i, v, "="); sum += v[2]}}
        END {printf "%d rounds survived, %d bytes verified, 0 verify errors\n", NR, sum}' storm.summary
}
