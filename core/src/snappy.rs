//! Snappy block compression into a caller's buffer, without allocation: the body encoding of
//! Prometheus remote write (`Content-Encoding: snappy` is the *block* format, not the framed
//! stream format).
//!
//! Written here rather than taken from a crate because the crates that implement Snappy
//! (`snap`, `snappy` bindings) need `std` and allocate their output and hash table; this one
//! writes into a slice and keeps its hash table in the [`Compressor`], whose size the caller
//! picks (256 entries, 512 bytes, are enough for a microcontroller's few-KiB requests).
//!
//! The encoder is the classic greedy one of the reference implementations: the input is cut
//! into 64 KiB blocks (so every offset fits 16 bits), 4-byte sequences are hashed into the
//! table, a hit that really matches becomes a copy, and the stride between lookups grows over
//! input that does not compress, so incompressible data costs little. The output is a valid
//! Snappy block for every input, checked against the `snap` crate's decoder in the tests.
//!
//! ```
//! use diag_core::snappy::{Compressor, max_compressed_len};
//!
//! let input = b"up{job=\"node\"} 1\nup{job=\"node\"} 1\nup{job=\"node\"} 1\n";
//! let mut out = [0u8; 128];
//! assert!(out.len() >= max_compressed_len(input.len()));
//! let n = Compressor::<256>::new().compress(input, &mut out)?;
//! assert!(n < input.len());
//! # Ok::<(), diag_core::snappy::OutputTooSmall>(())
//! ```

use core::fmt;

/// Bytes compressed independently: copies never reach further back than this, so every
/// offset fits the 2-byte form.
const BLOCK: usize = 1 << 16;

/// Bytes at the end of a block never looked up, so that 8-byte loads near the end stay in
/// bounds (the reference encoders' `inputMargin`).
const MARGIN: usize = 16 - 1;

/// Blocks shorter than this are written as one literal.
const MIN_BLOCK: usize = 1 + 1 + MARGIN;

/// The most bytes compressing `len` bytes can take: the worst case of the format (a literal
/// header every 64 KiB and the length preamble), as the reference implementation bounds it.
pub const fn max_compressed_len(len: usize) -> usize {
    32 + len + len / 6
}

/// The output buffer is shorter than [`max_compressed_len`] of the input; nothing was written
/// that a caller should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputTooSmall {
    /// The bytes the output must have.
    pub needed: usize,
}

impl fmt::Display for OutputTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snappy output buffer too small: {} bytes needed", self.needed)
    }
}

impl core::error::Error for OutputTooSmall {}

/// A Snappy block compressor with a hash table of `TABLE` entries (a power of two from 256 to
/// 16,384; 2 bytes each). Bigger tables find more matches in inputs over a few KiB; the
/// table is cleared for every 64 KiB block, so one compressor serves any number of inputs.
#[derive(Clone)]
pub struct Compressor<const TABLE: usize = 4096> {
    table: [u16; TABLE],
}

impl<const TABLE: usize> fmt::Debug for Compressor<TABLE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor").field("table", &TABLE).finish()
    }
}

impl<const TABLE: usize> Default for Compressor<TABLE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const TABLE: usize> Compressor<TABLE> {
    const VALID: () = assert!(
        TABLE.is_power_of_two() && TABLE >= 256 && TABLE <= 1 << 14,
        "the table size must be a power of two from 256 to 16384"
    );

    /// A compressor with an empty table.
    pub const fn new() -> Self {
        let () = Self::VALID;
        Self { table: [0; TABLE] }
    }

    /// Compresses `input` into `output` as one Snappy block; returns the bytes written.
    ///
    /// # Errors
    /// [`OutputTooSmall`] when `output` is shorter than [`max_compressed_len`]`(input.len())`:
    /// checked first, so the compressor never runs out of room halfway.
    pub fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, OutputTooSmall> {
        let needed = max_compressed_len(input.len());
        if output.len() < needed {
            return Err(OutputTooSmall { needed });
        }
        let mut out = Out { buf: output, pos: 0 };
        out.varint(input.len() as u64);
        for block in input.chunks(BLOCK) {
            if block.len() < MIN_BLOCK {
                out.literal(block);
            } else {
                self.block(block, &mut out);
            }
        }
        Ok(out.pos)
    }

    /// The greedy matcher over one block (at most 64 KiB, at least [`MIN_BLOCK`] bytes).
    fn block(&mut self, src: &[u8], out: &mut Out<'_>) {
        // A table no larger than the block needs: small inputs clear less.
        let mut size = 256;
        while size < TABLE && size < src.len() {
            size *= 2;
        }
        let table = &mut self.table[..size];
        table.fill(0);
        let shift = 32 - size.trailing_zeros();
        let hash = |x: u32| (x.wrapping_mul(0x1e35_a7bd) >> shift) as usize;

        let limit = src.len() - MARGIN;
        let mut emitted = 0; // input before this is written out
        let mut s = 1;
        let mut next_hash = hash(load32(src, s));
        'outer: loop {
            // Look for a 4-byte match, stepping further apart the longer nothing matches
            // (one more byte per step after every 32 misses).
            let mut skip = 32;
            let mut next = s;
            let mut candidate;
            loop {
                s = next;
                let step = skip >> 5;
                next = s + step;
                skip += step;
                if next > limit {
                    break 'outer;
                }
                candidate = usize::from(table[next_hash]);
                // Offsets within a 64 KiB block fit u16.
                table[next_hash] = s as u16;
                next_hash = hash(load32(src, next));
                if load32(src, s) == load32(src, candidate) {
                    break;
                }
            }
            out.literal(&src[emitted..s]);
            // Copies, as long as each one's end starts another match.
            loop {
                let base = s;
                s += 4;
                let mut i = candidate + 4;
                while s < src.len() && src[i] == src[s] {
                    i += 1;
                    s += 1;
                }
                out.copy(base - candidate, s - base);
                emitted = s;
                if s >= limit {
                    break 'outer;
                }
                // Index the positions just before and at the match's end; go on copying if
                // the end matches too.
                let x = load64(src, s - 1);
                table[hash(x as u32)] = (s - 1) as u16;
                let at = hash((x >> 8) as u32);
                candidate = usize::from(table[at]);
                table[at] = s as u16;
                if (x >> 8) as u32 != load32(src, candidate) {
                    next_hash = hash((x >> 16) as u32);
                    s += 1;
                    break;
                }
            }
        }
        if emitted < src.len() {
            out.literal(&src[emitted..]);
        }
    }
}

fn load32(src: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&src[at..at + 4]);
    u32::from_le_bytes(w)
}

fn load64(src: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&src[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The output cursor. Room was checked against [`max_compressed_len`] up front, so the
/// writes below stay in bounds (they are bounds-checked all the same: a bug panics, it never
/// writes out of bounds).
struct Out<'o> {
    buf: &'o mut [u8],
    pos: usize,
}

impl Out<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.pos] = b;
        self.pos += 1;
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// A literal: tag `00` with the length minus one in the tag (under 60) or in the 1 to 4
    /// bytes after it (tags 60 to 63).
    fn literal(&mut self, lit: &[u8]) {
        if lit.is_empty() {
            return;
        }
        let n = lit.len() - 1;
        if n < 60 {
            self.byte((n as u8) << 2);
        } else {
            let bytes = (usize::BITS - n.leading_zeros()).div_ceil(8) as usize;
            self.byte(((59 + bytes) as u8) << 2);
            self.buf[self.pos..self.pos + bytes].copy_from_slice(&n.to_le_bytes()[..bytes]);
            self.pos += bytes;
        }
        self.buf[self.pos..self.pos + lit.len()].copy_from_slice(lit);
        self.pos += lit.len();
    }

    /// A copy of `len` (≥ 4) bytes from `offset` (1 to 65,535) back: 1-byte-offset copies
    /// (tag `01`, 4 to 11 bytes, offset under 2,048) where they fit, else 2-byte-offset ones
    /// (tag `10`, 1 to 64 bytes each).
    fn copy(&mut self, offset: usize, mut len: usize) {
        let two = |out: &mut Self, len: usize| {
            out.byte(((len - 1) as u8) << 2 | 0b10);
            out.byte(offset as u8);
            out.byte((offset >> 8) as u8);
        };
        while len >= 68 {
            two(self, 64);
            len -= 64;
        }
        if len > 64 {
            // Leave at least 4 for the last copy.
            two(self, 60);
            len -= 60;
        }
        if len >= 12 || offset >= 2048 {
            two(self, len);
        } else {
            self.byte(((offset >> 8) as u8) << 5 | ((len - 4) as u8) << 2 | 0b01);
            self.byte(offset as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec;
    use std::vec::Vec;

    use super::*;

    fn roundtrip<const T: usize>(input: &[u8]) -> usize {
        let mut out = vec![0u8; max_compressed_len(input.len())];
        let n = Compressor::<T>::new().compress(input, &mut out).expect("room");
        let back = snap::raw::Decoder::new().decompress_vec(&out[..n]).expect("a valid snappy block");
        assert_eq!(back, input, "len {}", input.len());
        n
    }

    /// A deterministic xorshift stream.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn short_and_empty_inputs_are_literals() {
        for len in 0..40 {
            let input: Vec<u8> = (0..len as u8).collect();
            roundtrip::<256>(&input);
        }
        let mut out = [0u8; 32];
        assert_eq!(Compressor::<256>::new().compress(b"", &mut out), Ok(1));
        assert_eq!(out[0], 0, "the length preamble of nothing");
    }

    #[test]
    #[cfg_attr(miri, ignore = "large inputs, and no unsafe code to check")]
    fn exposition_text_compresses_and_round_trips() {
        let mut text = Vec::new();
        for i in 0..2000 {
            text.extend_from_slice(
                std::format!("http_requests_total{{method=\"GET\",code=\"200\",user=\"user-{i:04}\"}} {i}\n")
                    .as_bytes(),
            );
        }
        let n = roundtrip::<4096>(&text);
        assert!(n * 3 < text.len(), "{n} of {} bytes", text.len());
        // A small table still compresses, less well.
        let small = roundtrip::<256>(&text);
        assert!(small < text.len(), "{small} of {}", text.len());
    }

    #[test]
    #[cfg_attr(miri, ignore = "large inputs, and no unsafe code to check")]
    fn random_and_mixed_inputs_round_trip_across_block_boundaries() {
        for (seed, len) in [(1, 17), (2, 100), (3, 4096), (4, 65_535), (5, 65_536), (6, 65_537), (7, 200_000)] {
            let random = noise(seed, len);
            roundtrip::<4096>(&random);
            // Runs and repeats of every length, offsets near and far.
            let mut mixed = Vec::with_capacity(len);
            let mut i = 0;
            while mixed.len() < len {
                match i % 4 {
                    0 => mixed.extend(core::iter::repeat_n(b'a' + (i % 7) as u8, i % 300)),
                    1 => mixed.extend_from_slice(&random[..(i * 37) % 100.min(random.len())]),
                    2 => {
                        let back = mixed.len().min(3000);
                        let from = mixed.len() - back;
                        let piece: Vec<u8> = mixed[from..from + back.min(i % 90)].to_vec();
                        mixed.extend_from_slice(&piece);
                    }
                    _ => mixed.extend_from_slice(&noise(seed + i as u64, i % 13)),
                }
                i += 1;
            }
            mixed.truncate(len);
            roundtrip::<256>(&mixed);
            roundtrip::<16384>(&mixed);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "large inputs, and no unsafe code to check")]
    fn long_literals_use_every_length_form() {
        for len in [60, 61, 255, 256, 257, 65_535] {
            roundtrip::<1024>(&noise(len as u64, len));
        }
        // A literal of 2^16 bytes or more only occurs in one block of a bigger input; the
        // preamble of a large input takes several bytes.
        roundtrip::<1024>(&noise(9, 1 << 20));
    }

    #[test]
    fn a_short_buffer_is_an_error_naming_the_size() {
        let input = noise(1, 1000);
        let mut out = vec![0u8; max_compressed_len(1000) - 1];
        let err = Compressor::<256>::new().compress(&input, &mut out).unwrap_err();
        assert_eq!(err.needed, max_compressed_len(1000));
        assert_eq!(std::format!("{err}"), "snappy output buffer too small: 1198 bytes needed");
    }

    #[test]
    #[cfg_attr(miri, ignore = "large inputs, and no unsafe code to check")]
    fn matches_the_reference_encoder_size_within_a_few_percent() {
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(
                std::format!("node_cpu_seconds_total{{cpu=\"{}\",mode=\"idle\"}} {}.5\n", i % 64, i * 7).as_bytes(),
            );
        }
        let ours = roundtrip::<16384>(&text);
        let theirs = snap::raw::Encoder::new().compress_vec(&text).expect("compress").len();
        assert!(ours <= theirs + theirs / 20, "ours {ours}, snap {theirs}");
    }
}
