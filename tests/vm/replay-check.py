#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Workload, log replayer and checker of the exhaustive crash test (tests/vm/tests/72-replay.sh).

  replay-check.py workload --dev DEV --target NAME --dust NAME --log NAME --ops N --seed N
                           --out FILE
      One thread runs N operations on DEV, a dm-remap-v4 device whose main is under the
      dm-dust device NAME and whose main and spare both lie on the dm-log-writes device LOG:
      O_DIRECT writes of 4 KiB blocks (some over a sector just made bad in dm-dust: remapped),
      asynchronous O_DIRECT|O_DSYNC writes (REQ_FUA, and no flush after them: libaio through
      io_submit), flushes (fsync), reads of a sector just made bad (the unit becomes pending;
      the next operation writes the block and heals it), `remap` and `unremap` messages, and
      discards. After each operation completes it puts a mark `op<i>` in the log, so the log
      tells when the workload saw each completion. What it did goes to FILE (JSON).

  replay-check.py replay --log-dev DEV --data-dev DEV --copy-main DEV --copy-spare DEV
                         --main-sectors N --spare-sectors N --target NAME --run FILE
                         [--every N]
      Replays the log from its start onto the (zeroed) data device, entry by entry, and stops
      at every crash point: each FLUSH and each FUA entry, and each mark that follows a flush
      or a FUA write the workload saw complete. At each point it copies main and spare as the
      log has them then onto COPY_MAIN and COPY_SPARE, creates a dm-remap-v4 device over the
      copies (loading the metadata; repairs allowed), checks every block of the workload's
      region, and removes the device. Points start at the mark `created`, which the test puts
      in the log once the target's creation (and the spare's formatting) completed. Prints the points replayed, the loads with repairs and
      the sectors verified; exits 1 at the first point that does not reassemble or reads a
      sector wrong.

The log is dm-log-writes' (Documentation/admin-guide/device-mapper/log-writes.rst): a super
block at sector 0 (magic, version, entry count, sector size), then per entry one sector holding
its header (sector, sector count, flags, data length) and, for a mark, its text; the written
data follows the header unless the entry is a discard. Non-FUA writes are logged when a flush
completes after them, FUA writes and marks when they complete: replaying a prefix of the log
gives a state the disks may be in after a crash at that moment.

Durability rule checked at every point (the target's promise, docs/design.md): a write the
workload saw complete is durable once it completed with FUA, or once a flush that it had
completed before completed itself. A sector reads its last durable version or a version
written after it (a write in flight or not yet flushed may or may not have landed, in parts);
never written and nothing durable: zeros or any version written. A discarded sector or one a
failed write touched may read anything until a later write to it is durable; a sector whose
read failed (pending) may fail to read until a write to it is durable.
"""
import argparse
import ctypes
import errno
import fcntl
import json
import mmap
import os
import random
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dm_message import message  # noqa: E402 (the path is set just above)

SECTOR = 512
BLOCK = 4096
SPB = BLOCK // SECTOR
# The workload's region of the target: 8 MiB at 4 MiB, in 4 KiB blocks.
FIRST_BLOCK = 1024
BLOCKS = 2048
ZERO_BLOCK = bytes(BLOCK)

# Every sector written carries (magic, sector index in its block, block, version), repeated to
# fill the sector, so that a read names the write it comes from.
MAGIC = b"RPLY"
HEADER = struct.Struct("<4sIQQ")


def block_data(block, version):
    data = bytearray(BLOCK)
    for i in range(SPB):
        sector = HEADER.pack(MAGIC, i, block, version) * (SECTOR // HEADER.size + 1)
        data[i * SECTOR:(i + 1) * SECTOR] = sector[:SECTOR]
    return bytes(data)


def sector_version(data, block, index):
    """The version a sector read holds: 0 for zeros, None for anything else."""
    if data == ZERO_BLOCK[:SECTOR]:
        return 0
    magic, i, b, version = HEADER.unpack_from(data)
    if magic != MAGIC or i != index or b != block or data != block_data(block, version)[index * SECTOR:(index + 1) * SECTOR]:
        return None
    return version


def describe(data):
    """What a sector read holds, for a failure message."""
    if data == ZERO_BLOCK[:SECTOR]:
        return "zeros"
    magic, i, block, version = HEADER.unpack_from(data)
    if magic != MAGIC:
        return f"foreign data ({data[:8].hex()}...)"
    return f"block {FIRST_BLOCK + block} sector {i} version {version}"


# ---- Asynchronous O_DSYNC writes: io_submit(2) through ctypes (linux/aio_abi.h) -----------------
SYS_IO_SETUP, SYS_IO_DESTROY, SYS_IO_GETEVENTS, SYS_IO_SUBMIT = 206, 207, 208, 209
IOCB = struct.Struct("<QIiHhIQQqQII")  # struct iocb, 64 bytes
IOCB_CMD_PWRITE = 1
RWF_DSYNC = 0x2
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def syscall(*args):
    ret = libc.syscall(*args)
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


class Aio:
    """One write at a time, submitted asynchronously: with O_DIRECT and RWF_DSYNC the block
    layer sets REQ_FUA on the bio, and (unlike a synchronous O_DSYNC write) no flush follows."""

    def __init__(self, fd):
        self.fd = fd
        self.ctx = ctypes.c_ulong(0)
        syscall(SYS_IO_SETUP, 1, ctypes.byref(self.ctx))

    def pwrite_dsync(self, buf, offset):
        address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        iocb = ctypes.create_string_buffer(
            IOCB.pack(0, 0, RWF_DSYNC, IOCB_CMD_PWRITE, 0, self.fd, address, len(buf), offset, 0, 0, 0))
        iocbs = (ctypes.c_void_p * 1)(ctypes.addressof(iocb))
        syscall(SYS_IO_SUBMIT, self.ctx, 1, iocbs)
        event = ctypes.create_string_buffer(32)
        while syscall(SYS_IO_GETEVENTS, self.ctx, 1, 1, event, None) != 1:
            pass
        res = struct.unpack_from("<q", event.raw, 16)[0]
        if res < 0:
            raise OSError(-res, os.strerror(-res))
        if res != len(buf):
            raise OSError(errno.EIO, f"short write: {res} of {len(buf)} bytes")


BLKDISCARD = 0x1277


# ---- Workload ------------------------------------------------------------------------------------
class Workload:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.control = os.open("/dev/mapper/control", os.O_RDWR)
        self.fd = os.open(args.dev, os.O_RDWR | os.O_DIRECT)
        self.aio = Aio(self.fd)
        self.buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT wants
        self.version = 0
        self.ops = []
        self.bad = set()  # dm-dust bad sectors (target sectors), all remapped or pending
        self.remapped = set()  # sectors the workload knows to be remapped
        self.written = set()  # blocks written at least once
        self.heal = None  # a block to write next: its read failed
        self.counts = {}

    def msg(self, device, text):
        return message(self.control, device, 0, text)

    def mark(self, i):
        self.msg(self.args.log, f"mark op{i}")

    def new_bad_sector(self, block):
        """Makes one not yet bad sector of BLOCK bad in dm-dust; returns it or None."""
        first = (FIRST_BLOCK + block) * SPB
        free = [s for s in range(first, first + SPB) if s not in self.bad]
        if not free:
            return None
        sector = self.rng.choice(free)
        # Writes to it fail too (255 times; without a count dm-dust heals it at the first write).
        self.msg(self.args.dust, f"addbadblock {sector} 255")
        self.bad.add(sector)
        return sector

    def write(self, op, block, fua):
        self.version += 1
        op.update(kind="write", block=block, version=self.version, fua=fua)
        self.buf[:] = block_data(block, self.version)
        offset = (FIRST_BLOCK + block) * BLOCK
        try:
            if fua:
                self.aio.pwrite_dsync(self.buf, offset)
            else:
                os.pwrite(self.fd, self.buf, offset)
        except OSError as e:
            op["error"] = errno.errorcode.get(e.errno, str(e.errno))
            return
        self.written.add(block)
        first = (FIRST_BLOCK + block) * SPB
        self.remapped.update(s for s in range(first, first + SPB) if s in self.bad)

    def step(self, i):
        op = {"i": i}
        r = self.rng.random()
        if self.heal is not None:
            op["heals"] = True
            self.write(op, self.heal, fua=self.rng.random() < 0.5)
            self.heal = None
        elif r < 0.33:
            block = self.rng.randrange(BLOCKS)
            if self.rng.random() < 0.8:
                op["bad"] = self.new_bad_sector(block)
            self.write(op, block, fua=False)
        elif r < 0.55:
            block = self.rng.randrange(BLOCKS)
            if self.rng.random() < 0.8:
                op["bad"] = self.new_bad_sector(block)
            self.write(op, block, fua=True)
        elif r < 0.70:
            op.update(kind="flush")
            os.fsync(self.fd)
        elif r < 0.77:
            # A read over a new bad sector fails and makes its unit pending; the next operation
            # writes the block, which heals the unit (remapped).
            block = self.rng.randrange(BLOCKS)
            sector = self.new_bad_sector(block)
            op.update(kind="read", block=block, bad=sector)
            try:
                os.preadv(self.fd, [self.buf], (FIRST_BLOCK + block) * BLOCK)
                op["result"] = "ok"
            except OSError as e:
                op["result"] = errno.errorcode.get(e.errno, str(e.errno))
            self.heal = block
        elif r < 0.84:
            # remap of a readable sector of a written block: its data moves to the spare.
            candidates = [b for b in self.written]
            block = self.rng.choice(sorted(candidates)) if candidates else self.rng.randrange(BLOCKS)
            sector = (FIRST_BLOCK + block) * SPB + self.rng.randrange(SPB)
            op.update(kind="remap", block=block, sector=sector)
            if sector in self.bad or sector in self.remapped:
                op["skipped"] = True
            else:
                op["out"] = self.msg(self.args.target, f"remap {sector}").strip()
                self.remapped.add(sector)
        elif r < 0.96:
            # unremap: the bad sector heals in dm-dust, its data is copied back to main.
            if not self.remapped:
                op.update(kind="flush")
                os.fsync(self.fd)
            else:
                sector = self.rng.choice(sorted(self.remapped))
                op.update(kind="unremap", block=sector // SPB - FIRST_BLOCK, sector=sector)
                if sector in self.bad:
                    self.msg(self.args.dust, f"removebadblock {sector}")
                    self.bad.discard(sector)
                self.msg(self.args.target, f"unremap {sector}")
                self.remapped.discard(sector)
        else:
            block = self.rng.randrange(BLOCKS)
            op.update(kind="discard", block=block)
            try:
                fcntl.ioctl(self.fd, BLKDISCARD, struct.pack("=QQ", (FIRST_BLOCK + block) * BLOCK, BLOCK))
            except OSError as e:
                op["error"] = errno.errorcode.get(e.errno, str(e.errno))
        self.mark(i)
        self.ops.append(op)
        key = op["kind"] + ("_fua" if op.get("fua") else "")
        self.counts[key] = self.counts.get(key, 0) + 1

    def run(self):
        for i in range(self.args.ops):
            self.step(i)
        os.fsync(self.fd)
        stats = self.msg(self.args.target, "stats").strip()
        with open("/sys/kernel/dm-remap-v4/remaps_made") as f:
            stats += f" remaps_made={f.read().strip()}"
        with open(self.args.out, "w") as f:
            json.dump({"ops": self.ops, "stats": stats}, f)
        unremaps = self.counts.get("unremap", 0)
        print(" ".join(f"{k}={v}" for k, v in sorted(self.counts.items())), f"| {stats}",
              f"| unremaps={unremaps}")


# ---- Replay --------------------------------------------------------------------------------------
LOG_FLUSH, LOG_FUA, LOG_DISCARD, LOG_MARK = 1, 2, 4, 8
LOG_MAGIC = 0x6A736677736872
LOG_SUPER = struct.Struct("<QQQI")
LOG_ENTRY = struct.Struct("<QQQQ")


def log_entries(log):
    """Yields (sector, sectors, flags, mark text or None, data or None) for each log entry."""
    magic, version, count, sectorsize = LOG_SUPER.unpack(os.pread(log, LOG_SUPER.size, 0))
    if magic != LOG_MAGIC or version != 1:
        raise SystemExit(f"replay-check: not a dm-log-writes log (magic {magic:#x}, version {version})")
    if sectorsize != SECTOR:
        raise SystemExit(f"replay-check: log sector size {sectorsize}, expected {SECTOR}")
    pos = SECTOR
    for _ in range(count):
        head = os.pread(log, SECTOR, pos)
        sector, sectors, flags, datalen = LOG_ENTRY.unpack_from(head)
        pos += SECTOR
        mark = data = None
        if flags & LOG_MARK:
            mark = head[LOG_ENTRY.size:LOG_ENTRY.size + datalen].decode()
        elif not flags & LOG_DISCARD and sectors:
            data = os.pread(log, sectors * SECTOR, pos)
            pos += sectors * SECTOR
        yield sector, sectors, flags, mark, data


class Expectation:
    """What each block's sectors may read at the current log position (see the module doc)."""

    def __init__(self, ops):
        self.ops = ops
        n = BLOCKS * SPB
        self.durable = [0] * n  # version
        self.durable_op = [-1] * n  # the operation that made it durable
        self.later = [set() for _ in range(n)]  # versions written since (in flight, unflushed)
        # The operation since which a sector may read anything (a discard, a failed write) or
        # fail to read (a failed read: pending), or -1: only a later durable write ends it.
        self.anything = [-1] * n
        self.may_fail = [-1] * n
        self.unflushed = []  # completed non-FUA writes, in order
        self.opened = -1

    def sectors(self, block):
        return range(block * SPB, (block + 1) * SPB)

    def open(self, i):
        """Operation I may be in flight from now on."""
        self.opened = i
        if i >= len(self.ops):
            return
        op = self.ops[i]
        if op["kind"] == "write":
            for s in self.sectors(op["block"]):
                self.later[s].add(op["version"])
        elif op["kind"] == "discard":
            for s in self.sectors(op["block"]):
                self.anything[s] = i
        elif op["kind"] == "read":
            for s in self.sectors(op["block"]):
                self.may_fail[s] = i

    def make_durable(self, op):
        i = op["i"]
        if "error" in op:
            for s in self.sectors(op["block"]):
                self.anything[s] = max(self.anything[s], i)
            return
        for s in self.sectors(op["block"]):
            if i > self.durable_op[s]:
                self.durable[s], self.durable_op[s] = op["version"], i
                self.later[s] = {v for v in self.later[s] if v > op["version"]}
                # Only a write after the discard or failed read ends what they allow.
                if i > self.anything[s]:
                    self.anything[s] = -1
                if i > self.may_fail[s]:
                    self.may_fail[s] = -1

    def completed(self, i):
        """The workload saw operation I complete (its mark)."""
        op = self.ops[i]
        if op["kind"] == "write":
            if op["fua"]:
                self.make_durable(op)
            else:
                self.unflushed.append(op)
        elif op["kind"] == "flush":
            for w in self.unflushed:
                self.make_durable(w)
            self.unflushed = []
        self.open(i + 1)

    def check(self, block, data):
        """Problems of one block read (DATA: its sectors, None for one that failed to read)."""
        first = block * SPB
        versions = {self.durable[s] for s in range(first, first + SPB)}
        if None not in data and len(versions) == 1:
            # The common case, quickly: the whole block holds its durable version.
            version = versions.pop()
            if b"".join(data) == (ZERO_BLOCK if version == 0 else block_data(block, version)):
                return []
        problems = []
        for k in range(SPB):
            s = block * SPB + k
            if self.anything[s] >= 0:
                continue
            if data is None or data[k] is None:
                if self.may_fail[s] < 0:
                    problems.append(f"sector {(FIRST_BLOCK + block) * SPB + k}: read failed, "
                                    f"expected version {self.durable[s]}")
                continue
            v = sector_version(data[k], block, k)
            if v == self.durable[s] or v in self.later[s]:
                continue
            problems.append(f"sector {(FIRST_BLOCK + block) * SPB + k}: reads {describe(data[k])}, "
                            f"expected {self.durable[s]} (durable since op {self.durable_op[s]})"
                            f" or one of {sorted(self.later[s])}")
        return problems


def read_blocks(dev):
    """{block: [8 sector bytes or None]} of the region of DEV (O_DIRECT); None: unreadable."""
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    chunk = mmap.mmap(-1, 64 * BLOCK)
    one = mmap.mmap(-1, SECTOR)
    out = {}
    try:
        for first in range(0, BLOCKS, 64):
            try:
                n = os.preadv(fd, [chunk], (FIRST_BLOCK + first) * BLOCK)
                if n != len(chunk):
                    raise OSError(errno.EIO, "short read")
                data = bytes(chunk)
                for b in range(64):
                    out[first + b] = [data[b * BLOCK + k * SECTOR:b * BLOCK + (k + 1) * SECTOR] for k in range(SPB)]
            except OSError:
                for b in range(first, first + 64):
                    sectors = []
                    for k in range(SPB):
                        try:
                            os.preadv(fd, [one], ((FIRST_BLOCK + b) * SPB + k) * SECTOR)
                            sectors.append(bytes(one))
                        except OSError:
                            sectors.append(None)
                    out[b] = sectors
    finally:
        os.close(fd)
    return out


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def writes_of(dev):
    """Writes completed on a block device (field 5 of its sysfs stat)."""
    rdev = os.stat(dev).st_rdev
    with open(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/stat") as f:
        return int(f.read().split()[4])


class Replay:
    def __init__(self, args):
        self.args = args
        with open(args.run) as f:
            self.ops = json.load(f)["ops"]
        self.log = os.open(args.log_dev, os.O_RDONLY)
        self.data = os.open(args.data_dev, os.O_RDWR)
        self.copy_main = os.open(args.copy_main, os.O_RDWR)
        self.copy_spare = os.open(args.copy_spare, os.O_RDWR)
        self.expect = Expectation(self.ops)
        self.dirty = []  # main ranges (sector, count) written since the last copy
        self.changed = True  # entries applied since the last load
        self.blocks = None  # what the last load read
        self.points = self.repaired = self.verified = self.loads = 0

    def apply(self, sector, sectors, flags, data):
        if flags & LOG_DISCARD:
            data = bytes(sectors * SECTOR)
        if data:
            self.changed = True
            os.pwrite(self.data, data, sector * SECTOR)
            if sector < self.args.main_sectors:
                self.dirty.append((sector, min(sectors, self.args.main_sectors - sector)))

    def copy(self):
        """The log's main and spare as they are now, onto the copies."""
        os.fsync(self.data)
        for sector, count in self.dirty:
            os.pwrite(self.copy_main, os.pread(self.data, count * SECTOR, sector * SECTOR), sector * SECTOR)
        self.dirty = []
        size = self.args.spare_sectors * SECTOR
        os.pwrite(self.copy_spare, os.pread(self.data, size, self.args.main_sectors * SECTOR), 0)
        os.fsync(self.copy_main)
        os.fsync(self.copy_spare)

    def check_point(self, what):
        self.points += 1
        if self.args.every > 1 and self.points % self.args.every:
            return
        if not self.changed:
            # The disks are as at the last load (a mark right after the FUA write it
            # acknowledges): check the stronger promise against what that load read.
            self.verify(what, self.blocks)
            return
        self.copy()
        table = f"0 {self.args.main_sectors} {self.args.target} {self.args.copy_main} {self.args.copy_spare}"
        main_writes = writes_of(self.args.copy_main)
        made = run(["dmsetup", "create", "chk", "--table", table])
        if made.returncode:
            raise SystemExit(f"replay-check: point {self.points} ({what}): does not reassemble: "
                             f"{made.stderr.strip()}")
        self.loads += 1
        try:
            words = run(["dmsetup", "status", "chk"]).stdout.split()
            copies, repairs = words[13], words[14]
            if copies != "5/5" or repairs != "0":
                self.repaired += 1
            self.blocks = read_blocks("/dev/mapper/chk")
            self.changed = False
            self.verify(what, self.blocks)
        finally:
            removed = run(["dmsetup", "remove", "chk"])
            if removed.returncode:
                raise SystemExit(f"replay-check: cannot remove chk: {removed.stderr.strip()}")
        if writes_of(self.args.copy_main) != main_writes:
            raise SystemExit(f"replay-check: point {self.points}: loading the target wrote to main")
        # The removal committed to the copy of the spare: the next point copies it afresh.

    def verify(self, what, blocks):
        problems = []
        for block, data in blocks.items():
            problems += self.expect.check(block, data)
            self.verified += SPB
        if problems:
            raise SystemExit(f"replay-check: point {self.points} ({what}), after op "
                             f"{self.expect.opened - 1}: {len(problems)} sectors wrong: "
                             + "; ".join(problems[:5]))

    def run(self):
        self.expect.open(0)
        entries = 0
        created = False  # points before the target's creation completed promise nothing
        for sector, sectors, flags, mark, data in log_entries(self.log):
            entries += 1
            if mark is not None:
                if mark == "created":
                    created = True
                    self.check_point("mark created")
                elif mark.startswith("op"):
                    i = int(mark[2:])
                    self.expect.completed(i)
                    op = self.ops[i]
                    # A promise was made: the state the workload then relied on.
                    if op["kind"] == "flush" or (op["kind"] == "write" and op["fua"]):
                        self.check_point(f"mark op {i}")
                continue
            self.apply(sector, sectors, flags, data)
            if created and flags & (LOG_FLUSH | LOG_FUA):
                self.check_point(f"entry {entries}, {'FLUSH' if flags & LOG_FLUSH else 'FUA'}")
        print(f"points={self.points} loads={self.loads} reassembled={self.loads} "
              f"repaired={self.repaired} sectors_verified={self.verified} log_entries={entries}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("workload")
    w.add_argument("--dev", required=True)
    w.add_argument("--target", required=True)
    w.add_argument("--dust", required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--ops", type=int, required=True)
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--out", required=True)
    r = sub.add_parser("replay")
    for name in ("--log-dev", "--data-dev", "--copy-main", "--copy-spare", "--target", "--run"):
        r.add_argument(name, required=True)
    r.add_argument("--main-sectors", type=int, required=True)
    r.add_argument("--spare-sectors", type=int, required=True)
    r.add_argument("--every", type=int, default=1, help="check every Nth point only")
    args = p.parse_args()
    if args.cmd == "workload":
        Workload(args).run()
    else:
        Replay(args).run()


if __name__ == "__main__":
    main()
