# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The guest-side test framework and its helpers. Runs inside the test VM only: between tests it
# removes every dm device, loop device and mount under /mnt and /tmp.
#
#   bash lib.sh run FILTER FILE...   run the test_* functions the FILEs define, if they match FILTER
#   source lib.sh                    the helpers, for a --script (test files get them already)
#
# A test is a function named test_<what>. Each runs in its own subshell with errexit, nounset and
# pipefail, in a fresh directory $TEST_TMP on tmpfs, after `dmesg -C`. Then the framework removes
# what the test left behind and scans dmesg. A test fails if a command in it fails, it calls
# `fail`, its leftovers cannot be removed (e.g. the module will not unload), or the kernel logged
# trouble.

# Set by guest-init.
DMR_MODULE=${DMR_MODULE:-}                  # dm-remap.ko inside the guest; empty without --module
VM_RESULTS=${VM_RESULTS:-/tmp/vm-results}   # logs go here (the results share)

# The disks tests/vm/run attaches, in this order. Each test starts with them zeroed.
MAIN=/dev/vda      # 256 MiB
SPARE=/dev/vdb     # 64 MiB
# shellcheck disable=SC2034 # used by the test files
SCRATCH=/dev/vdc   # 256 MiB, for fixtures (small spares, stacked devices)

TARGET=dm-remap-v4
# shellcheck disable=SC2034
TARGET_VERSION=v4.0.0
DMR_MODNAME=${DMR_MODULE##*/}
DMR_MODNAME=${DMR_MODNAME%.ko}
DMR_MODNAME=${DMR_MODNAME//-/_}
DMR_MODNAME=${DMR_MODNAME:-dm_remap}

MiB=$((1 << 20))

# dmesg lines that mean the kernel is unwell: any of them fails the test that was running.
KERNEL_TROUBLE='Oops|BUG:|WARNING:|Call Trace|general protection|KASAN|UBSAN'
KERNEL_TROUBLE+='|sleeping function called from invalid context|rust_panic|panicked|kernel BUG'
KERNEL_TROUBLE+='|lockdep|possible recursive locking|INFO: task .* blocked'
# What the debug kernel's checkers print (scripts/kernel/debug.config): lockdep's and RCU's
# reports, debugobjects (ODEBUG), list debugging, kmemleak after a scan, RCU stalls.
KERNEL_TROUBLE+='|circular locking|inconsistent lock state|lock held when returning|suspicious RCU usage'
KERNEL_TROUBLE+='|bad unlock balance|held lock freed|ODEBUG|list_add corruption|list_del corruption'
KERNEL_TROUBLE+='|suspected memory leak|unreferenced object|refcount_t:|rcu: INFO|self-detected stall'

# ---- Assertions --------------------------------------------------------------------------------

# Fails the current test with MESSAGE (the first failure recorded is the one reported).
fail() {
    if [[ -n ${_TEST_REASON:-} && ! -s $_TEST_REASON ]]; then
        printf '%s\n' "$*" >"$_TEST_REASON"
    fi
    printf 'fail: %s\n' "$*" >&2
    exit 1
}

assert_eq() { # ACTUAL EXPECTED [WHAT]
    [[ $1 == "$2" ]] || fail "${3:-value}: expected '$2', got '$1'"
}

assert_match() { # STRING ERE [WHAT]
    [[ $1 =~ $2 ]] || fail "${3:-value}: '$1' does not match /$2/"
}

assert_fails() { # COMMAND...
    if "$@"; then
        fail "succeeded but should have failed: $*"
    fi
}

# Retries COMMAND every 0.2 s until it succeeds; fails the test after SECONDS.
# WAIT_SCALE (default 1) multiplies every limit: the debug kernel runs several times slower.
wait_for() { # SECONDS COMMAND...
    local end=$((SECONDS + $1 * ${WAIT_SCALE:-1}))
    shift
    until "$@"; do
        ((SECONDS < end)) || fail "timed out waiting for: $*"
        sleep 0.2
    done
}

# ---- Data --------------------------------------------------------------------------------------

random_file() { # FILE MIB
    head -c $(($2 * MiB)) /dev/urandom >"$1"
}

# O_DIRECT only works with coreutils dd: busybox dd accepts and ignores the flag.
require_coreutils_dd() {
    [[ -z ${_dd_checked:-} ]] || return 0
    dd --version 2>/dev/null | head -n1 | grep -q coreutils ||
        fail "$(command -v dd) is not coreutils dd: direct I/O would not be direct"
    _dd_checked=1
}

# Copies FILE onto DEV at byte OFFSET and flushes; "direct" writes with O_DIRECT. The block
# size divides the file's size: coreutils dd silently drops O_DIRECT for a short last block.
write_at() { # FILE DEV OFFSET [direct]
    local flags=seek_bytes
    [[ ${4:-} != direct ]] || { require_coreutils_dd && flags+=,direct; }
    dd if="$1" of="$2" bs="$(_io_size "$(stat -c %s "$1")")" seek="$3" oflag="$flags" \
        conv=notrunc,fsync status=none
}

# Prints the sha256 of LEN bytes of DEV at byte OFFSET; "direct" reads with O_DIRECT.
sha_at() { # DEV OFFSET LEN [direct]
    local flags=skip_bytes,count_bytes
    [[ ${4:-} != direct ]] || { require_coreutils_dd && flags+=,direct; }
    dd if="$1" bs="$(_io_size "$3")" skip="$2" count="$3" iflag="$flags" status=none |
        sha256sum | cut -d' ' -f1
}

# The largest power-of-two I/O size up to 1 MiB that divides LEN bytes.
_io_size() { # LEN
    local bs=$MiB
    while ((bs > 512 && $1 % bs != 0)); do bs=$((bs / 2)); done
    echo "$bs"
}

sha_file() { # FILE
    sha256sum <"$1" | cut -d' ' -f1
}

# Asserts that DEV holds the content of FILE at byte OFFSET.
assert_data() { # FILE DEV OFFSET [direct]
    local len
    len=$(stat -c %s "$1")
    assert_eq "$(sha_at "$2" "$3" "$len" "${4:-}")" "$(sha_file "$1")" \
        "sha256 of $len bytes of $2 at byte $3${4:+ ($4)}"
}

# Asserts that LEN bytes of DEV at byte OFFSET are zero.
assert_zero() { # DEV OFFSET LEN
    cmp -s -n "$3" /dev/zero <(dd if="$1" bs=1M skip="$2" count="$3" \
        iflag=skip_bytes,count_bytes,direct status=none) ||
        fail "$1: the $3 bytes at byte $2 are not all zero"
}

# Makes the next reads come from the devices, not the page cache.
drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

# ---- Devices -----------------------------------------------------------------------------------

sectors() { # DEV
    blockdev --getsz "$1"
}

devno() { # DEV -> MAJOR:MINOR
    printf '%d:%d\n' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")"
}

# Makes dm-linear device NAME of LEN sectors over DEV from sector OFFSET; prints its path.
linear() { # NAME DEV LEN [OFFSET]
    dmsetup create "$1" --table "0 $3 linear $2 ${4:-0}"
    echo "/dev/mapper/$1"
}

# Makes a loop device with 4096-byte logical blocks over a MIB-MiB file; prints its path.
loop_4k() { # MIB
    local file dev
    file=$(mktemp -p "$TEST_TMP" loop4k.XXXXXX)
    truncate -s "$1M" "$file"
    dev=$(losetup --sector-size 4096 --find --show "$file")
    assert_eq "$(blockdev --getss "$dev")" 4096 "logical block size of $dev"
    echo "$dev"
}

# The block device that PATH or MAJOR:MINOR names, as /dev/NAME (dm-3, loop0, vda: the
# kernel's name, whatever node or link led to it); fails if it names none.
block_dev() { # PATH|MAJOR:MINOR
    local devno=$1
    if [[ ! $devno =~ ^[0-9]+:[0-9]+$ ]]; then
        [[ -b $1 ]] || return 1
        devno=$(devno "$1")
    fi
    [[ -e /sys/dev/block/$devno/stat ]] || return 1
    echo "/dev/$(basename "$(readlink -f "/sys/dev/block/$devno")")"
}

# The counters of the writes and discards block device DEV has completed (requests and
# sectors, from its sysfs stat file): while they stay the same, nothing has changed DEV's data.
write_counters() { # DEV
    awk '{print "writes=" $5, "sectors=" $7, "discards=" $12, "discarded=" $14}' \
        "/sys/dev/block/$(devno "$1")/stat"
}

# Guards the data on DEV: writes 1 MiB of random data at its start (where a target would most
# likely scribble: labels, metadata), unless DEV is smaller, read-only or GUARD_KEEP is set
# (then its present content is guarded), and records the checksum of that MiB and DEV's write
# counters. assert_guarded fails if either changed. The state is kept in ./guard.* ($TEST_TMP).
guard_data() { # DEV
    local dev=$1 tag len
    tag=$(basename "$dev")
    len=$(($(sectors "$dev") * 512))
    ((len < MiB)) || len=$MiB
    if [[ -z ${GUARD_KEEP:-} && $len == "$MiB" && $(blockdev --getro "$dev") == 0 ]]; then
        head -c "$MiB" /dev/urandom >"guard.$tag.data"
        write_at "guard.$tag.data" "$dev" 0 direct
    fi
    printf '%s %s\n' "$len" "$(sha_at "$dev" 0 "$len" direct)" >"guard.$tag.sha"
    write_counters "$dev" >"guard.$tag.io"
    echo "$dev" >>guard.list
}

assert_guarded() {
    local dev tag len sha
    [[ -f guard.list ]] || return 0
    while read -r dev; do
        tag=$(basename "$dev")
        read -r len sha <"guard.$tag.sha"
        assert_eq "$(write_counters "$dev")" "$(cat "guard.$tag.io")" "write counters of $dev"
        assert_eq "$(sha_at "$dev" 0 "$len" direct)" "$sha" "checksum of the first $len bytes of $dev"
    done <guard.list
}

# ---- dm-remap ----------------------------------------------------------------------------------

dmr_load() {
    [[ -n $DMR_MODULE ]] || fail "no dm-remap module given (tests/vm/run --module)"
    [[ -f $DMR_MODULE ]] || fail "$DMR_MODULE: no such file"
    insmod "$DMR_MODULE"
}

dmr_unload() {
    rmmod "$DMR_MODNAME"
}

dmr_loaded() {
    grep -q "^$DMR_MODNAME " /proc/modules
}

# The table line that maps all of MAIN with SPARE as spare.
dmr_table() { # [MAIN [SPARE]]
    local main=${1:-$MAIN} spare=${2:-$SPARE}
    echo "0 $(sectors "$main") $TARGET $main $spare"
}

dmr_create() { # NAME [MAIN [SPARE]]
    dmsetup create "$1" --table "$(dmr_table "${@:2}")"
}

# Field N (1-based) of DEV's INFO status line after "<start> <len> <target>" (docs/status.md).
dmr_status_field() { # DEV N
    dmsetup status "$1" | awk -v n="$2" '{print $(n + 3)}'
}

# The first sector of the spare data area of dm-remap device DEV over SPARE (the metadata area
# before it scales with the spare): from status fields 2 (unit) and 5 (<used>/<total> units).
first_spare_sector() { # DEV SPARE
    local total unit
    total=$(dmr_status_field "$1" 5 | cut -d/ -f2)
    unit=$(dmr_status_field "$1" 2)
    echo $(( $(sectors "$2") / unit * unit - total * unit ))
}

# Sends the messages on stdin (one per line) to dm device NAME through one process: starting
# dmsetup once per message costs ~0.15 s under TCG. Prints each message's output; the first
# refused message fails. A dm-remap-v4 device gets them from the operator tool
# (`dm-remap message NAME`) when the run has it (DMR_CLI: the vm and vm7 phases of
# scripts/test); other targets (dm-dust) and runs without the tool (the debug and dkms-vm
# phases, which do not build it) use dm_message.py, which the tool's output matches.
dm_messages() { # NAME
    local bin=${DMR_CLI:-}
    [[ -z $bin || $bin == /* ]] || bin=$DMR_REPO/$bin
    if [[ -n $bin && -x $bin && $(dmsetup table "$1" 2>/dev/null) == *" $TARGET "* ]]; then
        "$bin" message "$1"
    else
        python3 "$DMR_REPO/tests/vm/dm_message.py" "$1"
    fi
}

# Makes dm-dust device "dust" over MAIN with BLOCK-byte blocks, enabled and quiet; prints its
# path. `addbadblock B` then fails reads of B, `addbadblock B N` also its next N writes.
dust_main() { # [BLOCK_BYTES]
    dust_on dust "$MAIN" "$(sectors "$MAIN")" "${1:-512}"
}

# Creates r0 (dm-remap-v4) over a dm-linear `mainraw` of MAIN and SPARE, suspends mainraw and
# starts a 4 KiB O_DIRECT write to r0 that waits there: in flight for dm-remap-v4 until
# `dmsetup resume mainraw`. The writer's pid goes to HELD_WRITER.
r0_with_held_write() {
    linear mainraw "$MAIN" "$(sectors "$MAIN")" >/dev/null
    dmsetup create r0 --table "0 $(sectors "$MAIN") $TARGET /dev/mapper/mainraw $SPARE"
    dmsetup suspend --noflush mainraw
    dd if=/dev/zero of=/dev/mapper/r0 bs=4096 count=1 seek=100 oflag=direct status=none &
    HELD_WRITER=$!
    sleep 2
}

# dm-dust device NAME over the first SECTORS of DEV, blocks of BLOCK_BYTES (default 512),
# failing reads of its bad blocks and quiet about them; prints its path.
dust_on() { # NAME DEV SECTORS [BLOCK_BYTES]
    dmsetup create "$1" --table "0 $3 dust $2 0 ${4:-512}"
    dmsetup message "$1" 0 enable
    dmsetup message "$1" 0 quiet
    echo "/dev/mapper/$1"
}

# ---- The runner --------------------------------------------------------------------------------

# Prints the dmesg lines that mean trouble; true if there are any.
kernel_trouble() {
    dmesg | grep -E "$KERNEL_TROUBLE"
}

# kmemleak (the debug kernel has it; debugfs is mounted by guest-init).
KMEMLEAK=/sys/kernel/debug/kmemleak

# Forgets the suspects found so far (boot's), so that the end of the run reports new ones only.
_kmemleak_begin() {
    [[ -w $KMEMLEAK ]] || return 0
    echo scan >"$KMEMLEAK" && echo clear >"$KMEMLEAK"
}

# Scans for leaks once the last test is done and reports them as the test `kernel_kmemleak`.
# An object counts as leaked once nothing has referenced it for 5 s, hence the wait.
_kmemleak_end() {
    local log="$VM_RESULTS/logs/kernel_kmemleak.log" n
    [[ -w $KMEMLEAK ]] || return 0
    echo "=== kernel_kmemleak"
    sleep 6
    echo scan >"$KMEMLEAK" && echo scan >"$KMEMLEAK"
    cat "$KMEMLEAK" >"$log"
    n=$(grep -c '^unreferenced object' "$log")
    if ((n == 0)); then
        _report "ok kernel_kmemleak (no leak since the first test)"
        return 0
    fi
    _report "FAIL kernel_kmemleak: $n unreferenced objects (logs/kernel_kmemleak.log)"
    head -n 60 "$log" | sed 's/^/    | /'
    return 1
}

# Runs the tests the FILEs define whose names match FILTER; true if all passed and some ran.
run_suite() { # FILTER FILE...
    local filter=$1 file name passed=0 failed=0 i=0
    shift
    mkdir -p "$VM_RESULTS/logs"
    local -A file_index
    for file; do
        i=$((i + 1))
        # shellcheck disable=SC2034 # read through a nameref
        file_index[$file]=$i
        # shellcheck source=/dev/null
        if ! source "$file"; then
            _report "FAIL load:${file##*/}: the file does not load (see above)"
            failed=$((failed + 1))
        fi
    done
    local -a tests
    mapfile -t tests < <(_test_names file_index)
    # A guest of `tests/vm/run --jobs` walks the suite in its order (forward or reverse) and
    # runs a test only if it claims it first: mkdir in the queue shared by the guests.
    [[ ${VM_CLAIM_ORDER:-forward} == forward ]] || mapfile -t tests < <(printf '%s\n' "${tests[@]}" | tac)
    _kmemleak_begin
    for name in "${tests[@]}"; do
        [[ $name =~ $filter ]] || continue
        [[ -z ${VM_CLAIMS:-} ]] || mkdir "$VM_CLAIMS/$name" 2>/dev/null || continue
        # Not in an if or ||: bash would ignore errexit all through the test.
        _run_test "$name"
        case $? in
        0) passed=$((passed + 1)) ;;
        *) failed=$((failed + 1)) ;;
        esac
    done
    _kmemleak_end || failed=$((failed + 1))
    if ((failed)); then
        echo "failed:"
        grep '^FAIL ' "$VM_RESULTS/tests.txt" | sed 's/^/  /'
    fi
    ((failed == 0 && passed > 0))
}

# Prints the names of the test_* functions, in the order of their files, then of their lines.
_test_names() { # FILE_INDEX (name of an associative array: file -> position)
    local -n order=$1
    local name line src
    shopt -s extdebug # makes `declare -F NAME` tell where NAME is defined
    declare -F | while read -r _ _ name; do
        [[ $name == test_* ]] || continue
        read -r _ line src < <(declare -F "$name")
        echo "${order[$src]:-0} $line $name"
    done | sort -n -k1,1 -k2,2 | cut -d' ' -f3
}

_report() {
    echo "$1"
    echo "$1" >>"$VM_RESULTS/tests.txt"
}

_now_ds() { # deciseconds since the epoch
    local t=${EPOCHREALTIME/./}
    echo $((t / 100000))
}

# Called by the ERR trap: records the failing command and where, from the failing line up to
# the test function's, unless it failed inside a command substitution (the command that used
# the substitution fails next, at the test's own level).
_on_err() { # STATUS COMMAND
    local i where=
    ((BASH_SUBSHELL == _TEST_LEVEL)) && [[ ! -s $_TEST_REASON ]] || return 0
    for ((i = 1; i < ${#FUNCNAME[@]}; i++)); do
        where+=" < ${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}"
        [[ ${FUNCNAME[i]} != "$_TEST_NAME" ]] || break
    done
    printf '%s\n' "'$2' failed (status $1) at ${where# < }" >"$_TEST_REASON"
}

_run_test() { # NAME
    local name=$1 log="$VM_RESULTS/logs/$1.log" dmesg_log="$VM_RESULTS/logs/$1.dmesg"
    local t0 rc problems trouble reason i
    local -a reasons=()
    TEST_TMP=/tmp/tests/$name
    _TEST_REASON=$TEST_TMP.reason
    rm -rf "$TEST_TMP"
    mkdir -p "$TEST_TMP"
    : >"$_TEST_REASON"
    echo "=== $name"
    # Every test starts on zeroed disks, whatever ran before (write-zeroes: milliseconds).
    blkdiscard -z "$MAIN" && blkdiscard -z "$SPARE" && blkdiscard -z "$SCRATCH" ||
        echo "could not zero the disks" >"$_TEST_REASON"
    dmesg -C
    t0=$(_now_ds)
    (
        [[ ! -s $_TEST_REASON ]] || exit 1
        cd "$TEST_TMP" || exit 1
        set -eEuo pipefail
        shopt -s inherit_errexit
        _TEST_LEVEL=$BASH_SUBSHELL _TEST_NAME=$name
        trap '_on_err $? "$BASH_COMMAND"' ERR
        "$name"
    ) </dev/null 2>&1 | tee "$log" | sed -u 's/^/    /'
    rc=${PIPESTATUS[0]}

    problems=$(_cleanup 2>>"$log")
    dmesg >"$dmesg_log"
    trouble=$(grep -E "$KERNEL_TROUBLE" "$dmesg_log")
    if ((rc != 0)); then
        reason=$(head -n1 "$_TEST_REASON")
        reasons+=("${reason:-exit status $rc, last output: $(tail -n1 "$log")}")
    fi
    [[ -z $problems ]] || reasons+=("cleanup: ${problems//$'\n'/; }")
    [[ -z $trouble ]] || reasons+=("kernel trouble: $(head -n1 <<<"$trouble")")
    rm -f "$_TEST_REASON"

    local dt=$(($(_now_ds) - t0))
    local took="($((dt / 10)).$((dt % 10))s)"
    if ((${#reasons[@]} == 0)); then
        _report "ok $name $took"
        return 0
    fi
    reason=${reasons[0]}
    for ((i = 1; i < ${#reasons[@]}; i++)); do
        reason+="; ${reasons[i]}"
    done
    _report "FAIL $name: $reason $took"
    if [[ -s $dmesg_log ]]; then
        echo "    --- dmesg of $name (last 60 lines):"
        tail -n 60 "$dmesg_log" | sed 's/^/    | /'
    fi
    return 1
}

_dm_devices_left() {
    compgen -G '/sys/block/dm-*' >/dev/null
}

# Removes what a test may have left behind; prints one line per thing it could not remove.
_cleanup() {
    local m i pid
    # Background processes a test left are orphans, adopted by PID 1 (whose only other child is
    # this runner): they may hold devices open.
    for pid in $(pgrep -P 1); do
        if ((pid != $$)); then
            echo "killing leftover process $pid ($(cat "/proc/$pid/comm"))" >&2
            kill -9 "$pid"
        fi
    done
    # Mounts first (they hold devices open), deepest first.
    while read -r m; do
        umount "$m" || echo "cannot unmount $m"
    done < <(findmnt -rn -o TARGET | grep -E '^/(mnt|tmp)/.' | sort -r)

    for i in 1 2 3 4 5; do
        _dm_devices_left || break
        dmsetup remove_all >/dev/null 2>&1
        _dm_devices_left || break
        sleep 1
    done
    if _dm_devices_left; then
        echo "dm devices cannot be removed: $(dmsetup ls 2>&1 | paste -sd' ')"
        dmsetup remove_all --force >/dev/null 2>&1
    else
        # Without udev, nodes of devices that vanished oddly would stay behind.
        find /dev/mapper -mindepth 1 ! -name control -delete
    fi

    losetup -D
    for i in 1 2 3 4 5; do
        [[ -n $(losetup -n -l) ]] || break
        sleep 1
    done
    [[ -z $(losetup -n -l) ]] || echo "loop devices still attached: $(losetup -n -l | paste -sd' ')"

    if dmr_loaded; then
        for i in 1 2 3; do
            rmmod "$DMR_MODNAME" 2>/dev/null && break
            sleep 1
        done
        ! dmr_loaded ||
            echo "module $DMR_MODNAME does not unload (refcnt $(cat "/sys/module/$DMR_MODNAME/refcnt"))"
    fi
    rm -rf "$TEST_TMP"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    case ${1:-} in
    run)
        shift
        run_suite "$@"
        ;;
    *)
        echo "usage: bash ${0##*/} run FILTER FILE..." >&2
        exit 2
        ;;
    esac
fi
