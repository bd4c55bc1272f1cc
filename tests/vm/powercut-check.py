#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Workload and checker of the power-cut test (tests/vm/tests/70-powercut.sh), in the guest.

  powercut-check.py workload --dev DEV --target NAME --dust NAME --seed N --first-version V
                             --out FILE -- CUT_COMMAND...
      Writer threads write 4 KiB blocks (O_DIRECT, random blocks of the region, random content
      derived from a version number) with an fsync every K writes, while a chaos thread adds
      bad sectors to dm-dust (writes to them fail, so dm-remap remaps them) and sends `remap`
      messages. After a random time the main thread runs CUT_COMMAND (which makes every
      later write vanish), lets the workload go on a little, stops it and saves what happened,
      with monotonic timestamps, to FILE (JSON).

  powercut-check.py check --dev DEV --run FILE --state FILE --base-list FILE --list FILE
                          --bad-before FILE --bad-now FILE
      After the device was reassembled: checks the remap list and every sector of the region
      against what the run says must have survived, then rewrites the --state file (what each
      sector holds now: the baseline of the next round). Exits 1 with the reasons on failure.

Durability rule (what a power cut may not lose): let T be the latest start of an fsync that
completed before the cut began. Every write acknowledged before T, every remap published before
T, and every remap loaded at the round's start, must survive. A sector may read its last such
version or any version written after it; a sector that is a bad sector of dm-dust and not
remapped may read as an I/O error (a bad sector's data is gone with it).
"""
import argparse
import errno
import hashlib
import json
import mmap
import os
import random
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dm_message import message  # noqa: E402 (the path is set just above)

SECTOR = 512
BLOCK = 4096
SPB = BLOCK // SECTOR
# The region written: 8 MiB at 16 MiB of the device, in 4 KiB blocks.
FIRST_BLOCK = 4096
BLOCKS = 2048
FIRST_SECTOR = FIRST_BLOCK * SPB
SECTORS = BLOCKS * SPB

# Every sector of a written block starts with this header, so that a read says which write of
# which block it comes from; the rest is pseudo-random bytes of that (block, version).
MAGIC = b"PCUT"
HEADER = struct.Struct("<4sIQQ")  # magic, sector index in the block, block, version
ZERO = bytes(SECTOR)
UNREADABLE = -1  # a sector state: reads fail (a bad sector of dm-dust, not remapped)


def block_data(block, version):
    data = bytearray(hashlib.shake_256(b"%d/%d" % (block, version)).digest(BLOCK))
    for i in range(SPB):
        HEADER.pack_into(data, i * SECTOR, MAGIC, i, block, version)
    return data


def parse_list(text):
    """`list` message output -> {sector: spare sector or "pending"}."""
    remaps = {}
    for line in text.splitlines():
        sector, where = line.split()
        remaps[int(sector)] = where if where == "pending" else int(where)
    return remaps


def parse_badblocks(text):
    """dm-dust `listbadblocks` output (512-byte blocks) -> set of sectors."""
    return {int(w) for w in text.split() if w.isdigit()}


# ---- Workload -----------------------------------------------------------------------------------


class Workload:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.stop = threading.Event()
        self.versions = iter(range(args.first_version, 1 << 62))
        self.lock = threading.Lock()
        # [thread, block, version, start, ack or None, errno or None]: appended before the write.
        self.writes = []
        self.flushes = []  # [thread, start, done or None, errno or None]
        self.chaos = []  # [message, start, done, output or "E<errno>"]
        self.threads_n = args.threads
        self.fsync_every = [self.rng.choice((1, 2, 8, 32)) for _ in range(args.threads)]
        self.failures = []  # exceptions of the threads

    def guarded(self, body, *args):
        try:
            body(*args)
        except Exception as e:  # reported by run(), which then fails
            self.failures.append(f"{body.__name__}{args}: {e!r}")
            self.stop.set()

    def writer(self, t):
        rng = random.Random(self.args.seed * 131 + t)
        owned = range(FIRST_BLOCK + t, FIRST_BLOCK + BLOCKS, self.threads_n)
        fd = os.open(self.args.dev, os.O_RDWR | os.O_DIRECT)
        buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT wants
        n = 0
        while not self.stop.is_set():
            block = rng.choice(owned)
            with self.lock:
                version = next(self.versions)
            buf[:] = block_data(block, version)
            entry = [t, block, version, time.monotonic(), None, None]
            self.writes.append(entry)  # in flight from here on
            try:
                os.pwrite(fd, buf, block * BLOCK)
                entry[4] = time.monotonic()
            except OSError as e:
                entry[5] = e.errno
            n += 1
            if n % self.fsync_every[t] == 0:
                flush = [t, time.monotonic(), None, None]
                self.flushes.append(flush)
                try:
                    os.fsync(fd)
                    flush[2] = time.monotonic()
                except OSError as e:
                    flush[3] = e.errno
        os.close(fd)

    def chaos_thread(self):
        """Bad sectors appear under the writers (dm-dust fails their next 255 writes, so the
        first write there is remapped) and sectors are remapped by message."""
        rng = random.Random(self.args.seed * 137)
        control = os.open("/dev/mapper/control", os.O_RDWR)
        while not self.stop.wait(rng.uniform(0.005, 0.04)):
            sector = rng.randrange(FIRST_SECTOR, FIRST_SECTOR + SECTORS)
            if rng.random() < 0.3:
                name, text = self.args.dust, f"addbadblock {sector} 255"
            else:
                name, text = self.args.target, f"remap {sector}"
            start = time.monotonic()
            try:
                out = message(control, name, 0, text).strip()
            except OSError as e:
                out = f"E{errno.errorcode.get(e.errno, e.errno)}"
            self.chaos.append([text, start, time.monotonic(), out])
        os.close(control)

    def run(self):
        # Some cuts come early: before or during the first commits.
        if self.rng.random() < 0.2:
            cut_after = self.rng.choice((0.02, 0.1, 0.3))
        else:
            cut_after = self.rng.uniform(0.1, 2.5)
        bodies = [(self.writer, t) for t in range(self.threads_n)] + [(self.chaos_thread,)]
        threads = [threading.Thread(target=self.guarded, args=body) for body in bodies]
        for th in threads:
            th.start()
        try:
            time.sleep(cut_after)
            cut_start = time.monotonic()
            subprocess.run(self.args.cut, check=True)
            cut_done = time.monotonic()
            # Go on for a while after the cut: all of it, commits too, must vanish harmlessly.
            time.sleep(self.rng.uniform(0.05, 0.4))
        finally:
            self.stop.set()
            for th in threads:
                th.join()
        control = os.open("/dev/mapper/control", os.O_RDWR)
        final_list = message(control, self.args.target, 0, "list")
        os.close(control)
        run = {
            "seed": self.args.seed, "cut_after": cut_after, "fsync_every": self.fsync_every,
            "cut_start": cut_start, "cut_done": cut_done, "writes": self.writes,
            "flushes": self.flushes, "chaos": self.chaos, "final_list": final_list,
        }
        with open(self.args.out, "w") as f:
            json.dump(run, f)
        before = sum(1 for w in self.writes if w[4] is not None and w[4] < cut_start)
        fl = sum(1 for f in self.flushes if f[2] is not None and f[2] < cut_start)
        every = "/".join(map(str, self.fsync_every))
        print(f"cut after {cut_after:.2f}s: {len(self.writes)} writes ({before} acknowledged "
              f"before the cut), {len(self.flushes)} fsyncs ({fl} before the cut, every {every} "
              f"writes), {len(self.chaos)} dust/remap messages")
        for failure in self.failures:
            print(f"powercut-check: workload thread failed: {failure}", file=sys.stderr)
        return 1 if self.failures else 0


# ---- Check --------------------------------------------------------------------------------------


def read_region(dev):
    """{sector: bytes or None (read error)} of the region, read with O_DIRECT; what fails is
    read again in 4 KiB blocks, and a block that fails sector by sector."""
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    out = {}
    bufs = {}

    def read(sector, count):
        buf = bufs.setdefault(count, mmap.mmap(-1, count * SECTOR))
        try:
            if os.preadv(fd, [buf], sector * SECTOR) != count * SECTOR:
                raise OSError(errno.EIO, "short read")
        except OSError:
            if count == 1:
                out[sector] = None
            else:
                step = SPB if count > SPB else 1
                for s in range(sector, sector + count, step):
                    read(s, step)
            return
        for i in range(count):
            out[sector + i] = bytes(buf[i * SECTOR:(i + 1) * SECTOR])

    for sector in range(FIRST_SECTOR, FIRST_SECTOR + SECTORS, 256):
        read(sector, 256)
    os.close(fd)
    return out


class Checker:
    def __init__(self, args):
        self.args = args
        self.problems = []
        with open(args.run) as f:
            self.run = json.load(f)
        self.state = self.load_state(args.state)
        with open(args.base_list) as f:
            self.base_list = parse_list(f.read())
        with open(args.list) as f:
            self.new_list = parse_list(f.read())
        with open(args.bad_before) as f:
            self.bad_before = parse_badblocks(f.read())
        with open(args.bad_now) as f:
            self.bad_now = parse_badblocks(f.read())
        self.final_list = parse_list(self.run["final_list"])
        self.cut = self.run["cut_start"]
        done = [f[1] for f in self.run["flushes"] if f[2] is not None and f[2] < self.cut]
        # The durable point: the latest start of a flush that completed before the cut.
        self.durable_at = max(done) if done else None
        self.data_cache = {}

    @staticmethod
    def load_state(path):
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            return [0] * SECTORS  # the disks start zeroed
        assert len(state) == SECTORS
        return state

    def problem(self, text):
        self.problems.append(text)

    def durable(self, t):
        return self.durable_at is not None and t is not None and t < self.durable_at

    def expected_data(self, block, version):
        key = (block, version)
        if key not in self.data_cache:
            if len(self.data_cache) > 4096:
                self.data_cache.clear()
            self.data_cache[key] = bytes(block_data(block, version))
        return self.data_cache[key]

    def check_errors(self):
        for t, block, version, _, _, err in self.run["writes"]:
            if err is not None:
                self.problem(f"write of version {version} to block {block} (thread {t}) failed: "
                             f"{errno.errorcode.get(err, err)}")
        for t, _, _, err in self.run["flushes"]:
            if err is not None:
                self.problem(f"fsync of thread {t} failed: {errno.errorcode.get(err, err)}")
        for text, _, _, out in self.run["chaos"]:
            # A sector already in dm-dust's list is refused; nothing else may be.
            if out.startswith("E") and not (text.startswith("addbadblock") and out == "EEINVAL"):
                self.problem(f"message '{text}' failed: {out}")

    def durable_remaps(self):
        """{sector: (what, why)} of the remaps that must survive: what is the spare sector,
        "remapped" (to some spare unit) or "pending" (pending or remapped since)."""
        must = {}
        rank = {"pending": 0, "remapped": 1}

        def need(sector, what, why):
            old = must.get(sector)
            if old is None or rank.get(old[0], 2) < rank.get(what, 2):
                must[sector] = (what, why)
            elif isinstance(old[0], int) and isinstance(what, int) and old[0] != what:
                self.problem(f"sector {sector} moved from spare sector {old[0]} ({old[1]}) "
                             f"to {what} ({why})")

        for s, what in self.base_list.items():
            need(s, what, "loaded at the round's start")
        bad_since = {s: -1.0 for s in self.bad_before}
        for text, start, done, out in self.run["chaos"]:
            verb, sector = text.split()[:2]
            if verb == "addbadblock" and out == "":
                bad_since.setdefault(int(sector), done)
            elif verb == "remap" and self.durable(done) and not out.startswith("E"):
                s, what = out.split()
                need(int(s), what if what == "pending" else int(what),
                     f"'{text}' answered '{out}' before the durable point")
        # A write that started after a sector of its block went bad had that sector remapped
        # (or it failed, which check_errors reports) by the time it was acknowledged.
        for t, block, version, start, ack, err in self.run["writes"]:
            if err is not None or not self.durable(ack):
                continue
            for s in range(block * SPB, (block + 1) * SPB):
                if bad_since.get(s, start) < start:
                    what = self.final_list.get(s)
                    if not isinstance(what, int):
                        self.problem(f"version {version} was written to block {block} after its "
                                     f"sector {s} went bad, yet that sector is "
                                     f"{what or 'not remapped'} at the end of the round")
                        what = "remapped"
                    need(s, what, f"version {version} written to block {block} after sector {s} "
                         f"went bad, acknowledged before the durable point")
        return must

    def check_remaps(self, must):
        lost = 0
        for s, (what, why) in sorted(must.items()):
            now = self.new_list.get(s)
            if what == "pending":
                ok = now is not None
            elif what == "remapped":
                ok = isinstance(now, int)
            else:
                ok = now == what
            if not ok:
                lost += 1
                if lost <= 10:
                    self.problem(f"remap of sector {s} lost: expected {what} ({why}); the "
                                 f"reassembled device has {now if now is not None else 'no entry'}")
        if lost > 10:
            self.problem(f"... {lost} lost remaps in all")
        units = [w for w in self.new_list.values() if w != "pending"]
        if len(units) != len(set(units)):
            self.problem("two sectors share a spare unit in the reassembled device's list")
        return lost

    def identify(self, block, i, data):
        """What sector i of block holds: (state, description); state is a version, 0 (zeros),
        UNREADABLE, or None (neither: garbage or corrupted data)."""
        if data is None:
            return UNREADABLE, "an I/O error"
        if data == ZERO:
            return 0, "zeros"
        magic, index, blk, version = HEADER.unpack_from(data)
        if magic != MAGIC or index != i or blk != block:
            return None, "garbage (no header of this sector)"
        if data != self.expected_data(block, version)[i * SECTOR:(i + 1) * SECTOR]:
            return None, f"version {version}'s header over corrupted data"
        return version, f"version {version}"

    def explain(self, s, block, i, what, durable, later, writes):
        history = ", ".join(f"v{w[2]}{' ack' if w[4] is not None else ''}"
                            f"{' durable' if self.durable(w[4]) else ''}" for w in writes)
        expected = {UNREADABLE: "unreadable", 0: "zeros"}.get(durable, f"version {durable}")
        if later:
            expected += f" or one of versions {sorted(later)}"
        return (f"sector {s} (block {block}.{i}) reads {what}; expected {expected}; list: "
                f"{self.new_list.get(s, 'not remapped')}, dust bad: {s in self.bad_now}; "
                f"writes this round: {history or 'none'}")

    def check_data(self):
        by_block = {}
        for w in self.run["writes"]:
            by_block.setdefault(w[1], []).append(w)
        region = read_region(self.args.dev)
        new_state = list(self.state)
        counts = {"verified": 0, "older": 0, "later": 0, "unreadable": 0, "bad": 0}
        for block in range(FIRST_BLOCK, FIRST_BLOCK + BLOCKS):
            # The block's writes, in order (one thread writes it): the last one acknowledged
            # before the durable point, and those after it, which may or may not have landed.
            writes = by_block.get(block, [])
            last = max((i for i, w in enumerate(writes) if self.durable(w[4])), default=-1)
            later = {w[2] for w in writes[last + 1:]}
            block_ok = True
            for i in range(SPB):
                s = block * SPB + i
                durable = writes[last][2] if last >= 0 else self.state[s - FIRST_SECTOR]
                seen, what = self.identify(block, i, region[s])
                if seen == UNREADABLE:
                    # Only a bad sector without a spare unit: its data went with the medium.
                    ok = s in self.bad_now and not isinstance(self.new_list.get(s), int)
                    counts["unreadable"] += 1
                else:
                    ok = seen is not None and (seen == durable or seen in later)
                    if ok and seen != durable:
                        counts["later"] += 1
                if not ok:
                    block_ok = False
                    counts["bad"] += 1
                    if counts["bad"] <= 10:
                        self.problem(self.explain(s, block, i, what, durable, later, writes))
                new_state[s - FIRST_SECTOR] = seen
            if block_ok and last >= 0:
                counts["verified"] += 1
            elif block_ok and any(v > 0 for v in self.state[(block - FIRST_BLOCK) * SPB:][:SPB]):
                counts["older"] += 1
        if counts["bad"] > 10:
            self.problem(f"... {counts['bad']} wrong sectors in all")
        return counts, new_state

    def check(self):
        self.check_errors()
        must = self.durable_remaps()
        lost = self.check_remaps(must)
        counts, new_state = self.check_data()
        durable_writes = sum(1 for w in self.run["writes"] if self.durable(w[4]))
        print(f"checked: {len(must)} remaps that must survive ({lost} lost), "
              f"{len(self.new_list)} listed; {durable_writes} writes acknowledged before the "
              f"durable point; verified={counts['verified']} blocks whose last flushed write "
              f"reads back, {counts['older']} blocks from earlier rounds, {counts['later']} "
              f"sectors with a newer version, {counts['unreadable']} unreadable bad sectors")
        if self.problems:
            for p in self.problems:
                print(f"powercut-check: {p}", file=sys.stderr)
            return 1
        with open(self.args.state, "w") as f:
            json.dump(new_state, f)
        return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("workload")
    w.add_argument("--dev", required=True)
    w.add_argument("--target", required=True, help="dm name of the dm-remap device")
    w.add_argument("--dust", required=True, help="dm name of the dm-dust device under it")
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--first-version", type=int, required=True)
    w.add_argument("--threads", type=int, default=3)
    w.add_argument("--out", required=True)
    w.add_argument("cut", nargs="+", help="the command that cuts the power")
    c = sub.add_parser("check")
    for name in ("dev", "run", "state", "base-list", "list", "bad-before", "bad-now"):
        c.add_argument(f"--{name}", required=True)
    args = p.parse_args()
    return Workload(args).run() if args.cmd == "workload" else Checker(args).check()


if __name__ == "__main__":
    sys.exit(main())
