#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Writes garbage into the metadata copies of a dm-remap spare, one deterministic seed at a
time, and checks after each that the module either loads the state it had (repairing the
damaged copies) or refuses the table cleanly: EINVAL, nothing written to either device.

For each seed: restore the metadata area saved before the first seed, damage it as the seed
says (random blocks, byte runs, bit flips, zeroed or swapped blocks, a superblock of another
copy, fields changed with the checksum fixed so that the damage gets past the CRC, garbage
in several or all copies), `dmsetup create` the device, compare its `list` with the expected
one, read the data back, remove it. The kernel log is read after every seed.

Usage: metadata-garbage.py NAME TABLE SPARE MAIN FIRST_SEED COUNT
  NAME   the dm device to create; TABLE its table line; SPARE and MAIN the devices under it
  expects ./expected.list (the `list` output), ./data.sha and ./data.where ("OFFSET LEN": the
  data to read back through the device) in the current directory.
Prints one line per seed and a summary; exits 1 at the first seed that breaks a rule.
Metadata layout: docs/metadata-format.md.
"""
import errno
import hashlib
import os
import random
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dm_message  # noqa: E402

BLOCK = 4096
SECTOR = 512
COPY_FACTORS = [0, 1, 2, 4, 8]
TROUBLE = re.compile(os.environ.get("KERNEL_TROUBLE", "Oops|BUG:|WARNING:|Call Trace|panicked"))
# The refusals a damaged spare may get (src/persist.rs, src/remap.rs).
REFUSALS = re.compile(
    "All metadata copies are invalid|Spare holds foreign data|Spare belongs to another main device"
    "|Spare was formatted for another remap unit|Spare device is smaller than its metadata says"
)


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = crc32c_table()


def crc32c(data):
    """CRC-32/ISCSI (docs/metadata-format.md): reflected, init and final xor 0xFFFFFFFF."""
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def seal_superblock(block):
    struct.pack_into("<I", block, 4092, crc32c(bytes(block[:4092])))


def seal_block(block, index):
    struct.pack_into("<I", block, 4092, crc32c(struct.pack("<Q", index) + bytes(block[:4092])))


class Spare:
    """The spare's metadata area as bytes, with the geometry of copy 0's superblock."""

    def __init__(self, image):
        sb = image[:BLOCK]
        if sb[:8] != b"DMREMAP4":
            raise SystemExit("the saved metadata has no superblock at sector 0")
        self.copy_sectors, = struct.unpack_from("<Q", sb, 88)
        self.remap_blocks, self.pending_blocks = struct.unpack_from("<QQ", sb, 120)
        self.unit_sectors, = struct.unpack_from("<I", sb, 80)
        self.main_sectors, = struct.unpack_from("<Q", sb, 48)
        self.seq, = struct.unpack_from("<Q", sb, 40)
        self.blocks = 1 + self.remap_blocks + self.pending_blocks

    def block_offset(self, copy, block):
        """Byte offset of block `block` (0: superblock) of copy `copy`."""
        return (COPY_FACTORS[copy] * self.copy_sectors) * SECTOR + block * BLOCK


# Superblock fields a resealed mutation may change: (offset, struct format).
SB_FIELDS = [(8, "<I"), (12, "<I"), (16, "<I"), (20, "<I"), (40, "<Q"), (48, "<Q"), (56, "<I"),
             (60, "<B"), (80, "<I"), (88, "<Q"), (96, "<Q"), (104, "<Q"), (112, "<Q"),
             (120, "<Q"), (128, "<Q"), (136, "<Q"), (144, "<Q"), (152, "<Q"), (160, "<Q"),
             (168, "<Q"), (24, "<Q"), (64, "<Q"), (200, "<B")]


def damage(rng, geo, img):
    """Damages `img` (a bytearray of the metadata area) as `rng` decides.
    Returns (description, expectation): "load" (4 good copies remain), "refuse" (no good copy
    remains) or "either" (a copy that passes its checksums: loading the old state or refusing
    are both right)."""
    kind = rng.choice(["sb-random", "block-random", "copy-random", "bytes", "bitflips",
                       "zero-copy", "swap-blocks", "other-copy-sb", "resealed-field",
                       "resealed-entry", "duplicate-unit", "many-copies", "all-copies"])
    copy = rng.randrange(5)

    def randomize(c, b, n=BLOCK, at=0):
        off = geo.block_offset(c, b) + at
        img[off:off + n] = rng.randbytes(n)

    def any_block():
        return rng.randrange(geo.blocks)

    if kind == "sb-random":
        randomize(copy, 0)
    elif kind == "block-random":
        randomize(copy, 1 + rng.randrange(geo.blocks - 1))
    elif kind == "copy-random":
        for b in range(geo.blocks):
            randomize(copy, b)
    elif kind == "bytes":
        n = rng.randrange(1, 65)
        randomize(copy, any_block(), n, rng.randrange(BLOCK - n + 1))
    elif kind == "bitflips":
        for _ in range(rng.randrange(1, 9)):
            off = geo.block_offset(copy, any_block()) + rng.randrange(BLOCK)
            img[off] ^= 1 << rng.randrange(8)
    elif kind == "zero-copy":
        off = geo.block_offset(copy, 0)
        img[off:off + geo.blocks * BLOCK] = bytes(geo.blocks * BLOCK)
    elif kind == "swap-blocks":
        a, b = rng.sample(range(geo.blocks), 2)
        oa, ob = geo.block_offset(copy, a), geo.block_offset(copy, b)
        img[oa:oa + BLOCK], img[ob:ob + BLOCK] = img[ob:ob + BLOCK], img[oa:oa + BLOCK]
    elif kind == "other-copy-sb":
        other = (copy + rng.randrange(1, 5)) % 5
        src, dst = geo.block_offset(other, 0), geo.block_offset(copy, 0)
        img[dst:dst + BLOCK] = img[src:src + BLOCK]
        kind += f" (copy {other}'s)"
    elif kind == "resealed-field":
        off, fmt = rng.choice(SB_FIELDS)
        base = geo.block_offset(copy, 0)
        old, = struct.unpack_from(fmt, img, base + off)
        bits = struct.calcsize(fmt) * 8
        new = rng.choice([old + 1, old - 1, 0, (1 << bits) - 1, rng.getrandbits(bits),
                          old ^ (1 << rng.randrange(bits))]) % (1 << bits)
        struct.pack_into(fmt, img, base + off, new)
        block = bytearray(img[base:base + BLOCK])
        seal_superblock(block)
        img[base:base + BLOCK] = block
        kind += f" (byte {off}: {old} -> {new})"
        return f"{kind} in copy {copy}", "either"
    elif kind == "resealed-entry":
        b = 1 + rng.randrange(geo.blocks - 1)
        base = geo.block_offset(copy, b)
        slot = rng.randrange(510)
        main_units = geo.main_sectors // geo.unit_sectors
        new = rng.choice([0, 2**64 - 1, main_units, main_units + 1, rng.getrandbits(64),
                          rng.randrange(1, main_units + 1)])
        struct.pack_into("<Q", img, base + 8 * slot, new)
        index = b - 1 if b <= geo.remap_blocks else b - 1 - geo.remap_blocks
        block = bytearray(img[base:base + BLOCK])
        seal_block(block, index)
        img[base:base + BLOCK] = block
        kind += f" (block {b} slot {slot} = {new:#x})"
        return f"{kind} in copy {copy}", "either"
    elif kind == "duplicate-unit":
        # A copy that passes every checksum and count yet records one main unit twice, with a
        # newer sequence number so that it is the one chosen: it must be found invalid and the
        # state loaded from the other copies.
        if not duplicate_unit(geo, img, copy):
            return "duplicate-unit skipped (fewer than two remaps)", "load"
    elif kind == "many-copies":
        copies = rng.sample(range(5), rng.randrange(2, 5))
        for c in copies:
            randomize(c, rng.randrange(geo.blocks))
        return f"{kind}: random block in copies {sorted(copies)}", "load"
    elif kind == "all-copies":
        for c in range(5):
            randomize(c, rng.randrange(geo.blocks))
        return f"{kind}: a random block in each copy", "refuse"
    return f"{kind} in copy {copy}", "load"


def duplicate_unit(geo, img, copy):
    """Makes copy `copy` record the main unit of its first remap entry in a second, free entry
    too, with counts and checksums fixed and its seq one higher. False if there is no remap."""
    entries = []
    for b in range(geo.remap_blocks):
        base = geo.block_offset(copy, 1 + b)
        for s in range(510):
            raw, = struct.unpack_from("<Q", img, base + 8 * s)
            entries.append((b, s, raw))
    used = [e for e in entries if e[2] not in (0, 2**64 - 1)]
    free = [e for e in entries if e[2] == 0]
    if not used or not free:
        return False
    b, s, _ = free[0]
    base = geo.block_offset(copy, 1 + b)
    struct.pack_into("<Q", img, base + 8 * s, used[0][2])
    block = bytearray(img[base:base + BLOCK])
    seq = geo.seq + 1
    struct.pack_into("<Q", block, 4080, seq)
    seal_block(block, b)
    img[base:base + BLOCK] = block
    sb_off = geo.block_offset(copy, 0)
    sb = bytearray(img[sb_off:sb_off + BLOCK])
    struct.pack_into("<Q", sb, 40, seq)
    count, = struct.unpack_from("<Q", sb, 136)
    struct.pack_into("<Q", sb, 136, count + 1)
    seal_superblock(sb)
    img[sb_off:sb_off + BLOCK] = sb
    return True


def write_counters(dev):
    """Writes and discards DEV completed (requests, sectors): see write_counters in lib.sh."""
    rdev = os.stat(dev).st_rdev
    with open(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/stat") as f:
        fields = f.read().split()
    return fields[4], fields[6], fields[11], fields[13]


class Kmsg:
    """New kernel log lines since the last call."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def read(self):
        lines = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                return lines
            except OSError as e:
                if e.errno == errno.EPIPE:  # overwritten records: go on
                    continue
                raise
            lines.append(rec.decode(errors="replace").split(";", 1)[-1].split("\n")[0])


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    name, table, spare, main_dev, first, count = sys.argv[1:7]
    first, count = int(first), int(count)
    expected = open("expected.list").read()
    data_sha = open("data.sha").read().strip()
    data_off, data_len = map(int, open("data.where").read().split())
    with open(spare, "rb") as f:
        head = f.read(BLOCK)
    geo = Spare(head)
    area = 9 * geo.copy_sectors * SECTOR
    fd = os.open(spare, os.O_RDWR)
    good = os.pread(fd, area, 0)
    if len(good) != area:
        raise SystemExit("cannot read the metadata area")
    control = os.open("/dev/mapper/control", os.O_RDWR)
    kmsg = Kmsg()
    main_io = write_counters(main_dev)
    results = {"loaded": 0, "repaired": 0, "refused": 0}
    print(f"metadata area: {area} bytes, copies of {geo.blocks} blocks, C={geo.copy_sectors}")

    def bad(seed, why):
        print(f"seed {seed}: FAILED: {why}")
        sys.exit(1)

    for seed in range(first, first + count):
        os.pwrite(fd, good, 0)
        os.fsync(fd)
        img = bytearray(good)
        what, expect = damage(random.Random(seed), geo, img)
        os.pwrite(fd, bytes(img), 0)
        os.fsync(fd)
        # What the spare holds now: a refusal must leave exactly this.
        spare_io = write_counters(spare)
        created = run(["dmsetup", "create", name, "--table", table])
        log = kmsg.read()
        trouble = [line for line in log if TROUBLE.search(line)]
        if trouble:
            bad(seed, f"{what}: kernel trouble: {trouble[0]}")
        if created.returncode == 0:
            listed = dm_message.message(control, name, 0, "list")
            status = run(["dmsetup", "status", name]).stdout.split()
            with open(f"/dev/mapper/{name}", "rb") as dev:
                dev.seek(data_off)
                sha = hashlib.sha256(dev.read(data_len)).hexdigest()
            removed = run(["dmsetup", "remove", name])
            if removed.returncode != 0:
                bad(seed, f"{what}: dmsetup remove failed: {removed.stderr.strip()}")
            if listed != expected:
                bad(seed, f"{what}: loaded another state: list {listed!r}")
            if sha != data_sha:
                bad(seed, f"{what}: the data read back differs")
            # status: start len target format unit remaps pending ... seq copies repairs
            copies, repairs = status[13], int(status[14])
            if copies != "5/5":
                bad(seed, f"{what}: {copies} metadata copies after the load")
            if expect == "refuse":
                bad(seed, f"{what}: loaded although no copy was intact")
            results["loaded"] += 1
            results["repaired"] += repairs > 0
            outcome = f"loaded, {repairs} copies repaired"
        else:
            if expect == "load":
                bad(seed, f"{what}: refused although good copies remain: {created.stderr.strip()}"
                    f" / {' | '.join(log[-3:])}")
            if "Invalid argument" not in created.stderr:
                bad(seed, f"{what}: refused without EINVAL: {created.stderr.strip()}")
            if not any(REFUSALS.search(line) for line in log):
                bad(seed, f"{what}: no known refusal in the log: {' | '.join(log[-3:])}")
            if write_counters(spare) != spare_io:
                bad(seed, f"{what}: the refusal wrote to the spare")
            if os.pread(fd, area, 0) != bytes(img):
                bad(seed, f"{what}: the metadata area changed although the table was refused")
            if run(["dmsetup", "info", name]).returncode == 0:
                bad(seed, f"{what}: a device was left behind")
            results["refused"] += 1
            outcome = "refused: " + next(line for line in log if REFUSALS.search(line)).strip()
        if write_counters(main_dev) != main_io:
            bad(seed, f"{what}: something wrote to the main device")
        print(f"seed {seed}: {what}: {outcome}")
    os.pwrite(fd, good, 0)
    os.fsync(fd)
    print(f"{count} seeds: {results['loaded']} loaded ({results['repaired']} with repairs), "
          f"{results['refused']} refused; main device never written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
