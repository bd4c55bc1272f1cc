#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Sends many `dmsetup message` messages to one dm device through a single open
/dev/mapper/control (the DM_TARGET_MSG ioctl of <linux/dm-ioctl.h>), because starting dmsetup
once per message costs ~0.15 s under TCG. Reads one message per line from stdin, prints each
message's output, exits 1 at the first refused message (printing its errno).

Usage: dm_message.py DEVICE_NAME [SECTOR] < messages
"""
import errno
import fcntl
import os
import struct
import sys

# struct dm_ioctl: u32 version[3], data_size, data_start, target_count; s32 open_count;
# u32 flags, event_nr, padding; u64 dev; char name[128], uuid[129], data[7] -> 312 bytes.
DM_IOCTL_FORMAT = "=3IIIIiIIIQ128s129s7s"
DM_IOCTL_SIZE = struct.calcsize(DM_IOCTL_FORMAT)
assert DM_IOCTL_SIZE == 312
DM_TARGET_MSG_CMD = 14
DM_TARGET_MSG = (3 << 30) | (DM_IOCTL_SIZE << 16) | (0xFD << 8) | DM_TARGET_MSG_CMD
DM_BUFFER_FULL_FLAG = 1 << 8
DM_DATA_OUT_FLAG = 1 << 16


def message(control, name, sector, text, room=1 << 16):
    while True:
        payload = struct.pack("=Q", sector) + text.encode() + b"\0"
        size = DM_IOCTL_SIZE + max(len(payload), room)
        header = struct.pack(DM_IOCTL_FORMAT, 4, 0, 0, size, DM_IOCTL_SIZE, 0, 0, 0, 0, 0, 0,
                             name.encode(), b"", b"")
        buf = bytearray(header + payload.ljust(size - DM_IOCTL_SIZE, b"\0"))
        fcntl.ioctl(control, DM_TARGET_MSG, buf)
        flags = struct.unpack_from("=I", buf, 28)[0]
        if flags & DM_BUFFER_FULL_FLAG:
            room *= 4
            continue
        if not flags & DM_DATA_OUT_FLAG:
            return ""
        out = bytes(buf[DM_IOCTL_SIZE:])
        return out[: out.index(b"\0")].decode()


def main():
    name = sys.argv[1]
    sector = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    control = os.open("/dev/mapper/control", os.O_RDWR)
    for line in sys.stdin:
        text = line.strip()
        try:
            out = message(control, name, sector, text)
        except OSError as e:
            print(f"{text}: {errno.errorcode.get(e.errno, e.errno)}", file=sys.stderr)
            return 1
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
