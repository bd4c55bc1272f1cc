// SPDX-License-Identifier: GPL-2.0

//! CRC32C (Castagnoli), the checksum of every on-disk metadata block (`docs/metadata-format.md`).
//!
//! Parameters (the "CRC-32/ISCSI" of the CRC catalogue, as used by ext4, btrfs and iSCSI):
//! polynomial `0x1EDC6F41` (reflected: `0x82F63B78`), input and output reflected, initial value
//! `0xFFFFFFFF`, final xor `0xFFFFFFFF`. The checksum of the ASCII bytes `123456789` is
//! [`CHECK`] (`0xE3069283`).
//!
//! Pure software, table driven (slicing by 8: eight 1 KiB tables built at compile time), no
//! allocation, no panic path: 4 KiB are checksummed in a few microseconds, which is ample for
//! metadata. It is not the kernel's `crc32c()` (which may use the CPU's instruction); both
//! compute the same function.

#[cfg(test)]
mod tests;

/// The CRC32C of the ASCII bytes `123456789`: the catalogue's check value.
pub const CHECK: u32 = 0xE306_9283;

/// The Castagnoli polynomial, bit-reflected.
const POLY_REFLECTED: u32 = 0x82F6_3B78;

/// `TABLES[0][b]` is the CRC register after shifting the byte `b` through a zero register;
/// `TABLES[k][b]` is the same for `b` followed by `k` zero bytes (slicing by 8).
static TABLES: [[u32; 256]; 8] = make_tables();

/// Builds [`TABLES`] (evaluated by the compiler; never runs in the kernel).
const fn make_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut reg = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            reg = if reg & 1 == 1 {
                (reg >> 1) ^ POLY_REFLECTED
            } else {
                reg >> 1
            };
            bit += 1;
        }
        tables[0][byte] = reg;
        byte += 1;
    }
    let mut byte = 0;
    while byte < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = tables[k - 1][byte];
            tables[k][byte] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            k += 1;
        }
        byte += 1;
    }
    tables
}

/// Looks up `TABLES[K][byte]`; a `u8` index into a 256-entry table cannot be out of bounds.
#[inline(always)]
fn t<const K: usize>(byte: u8) -> u32 {
    match TABLES.get(K).and_then(|table| table.get(usize::from(byte))) {
        Some(&value) => value,
        None => 0,
    }
}

/// An incremental CRC32C computation: feed bytes with [`Crc32c::update`] in any number of
/// pieces, then read the checksum with [`Crc32c::finish`]. The result depends only on the
/// concatenation of the pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32c {
    /// The CRC register (before the final xor).
    reg: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// A computation over no bytes yet (register `0xFFFFFFFF`).
    pub const fn new() -> Self {
        Crc32c { reg: u32::MAX }
    }

    /// Feeds `data` (any length, including 0) and returns the updated computation.
    #[must_use]
    pub fn update(self, data: &[u8]) -> Self {
        let mut reg = self.reg;
        let mut rest = data;
        while let Some((&[b0, b1, b2, b3, b4, b5, b6, b7], tail)) = rest.split_first_chunk::<8>() {
            rest = tail;
            let low = u32::from_le_bytes([b0, b1, b2, b3]) ^ reg;
            let [l0, l1, l2, l3] = low.to_le_bytes();
            reg = t::<7>(l0)
                ^ t::<6>(l1)
                ^ t::<5>(l2)
                ^ t::<4>(l3)
                ^ t::<3>(b4)
                ^ t::<2>(b5)
                ^ t::<1>(b6)
                ^ t::<0>(b7);
        }
        for &byte in rest {
            let [low, ..] = reg.to_le_bytes();
            reg = (reg >> 8) ^ t::<0>(low ^ byte);
        }
        Crc32c { reg }
    }

    /// The CRC32C of all bytes fed so far (the register xor `0xFFFFFFFF`).
    pub const fn finish(self) -> u32 {
        !self.reg
    }
}

/// The CRC32C of `data` (see the module documentation for the parameters).
pub fn crc32c(data: &[u8]) -> u32 {
    Crc32c::new().update(data).finish()
}
