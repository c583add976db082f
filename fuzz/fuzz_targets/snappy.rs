//! The Snappy block compressor: any input, with each table size, compresses into a buffer of
//! `max_compressed_len` bytes (never more), and the reference decoder gives the input back.

#![no_main]

use diag_core::snappy::{Compressor, max_compressed_len};
use libfuzzer_sys::fuzz_target;

fn check<const T: usize>(input: &[u8]) {
    let mut out = vec![0u8; max_compressed_len(input.len())];
    let n = Compressor::<T>::new().compress(input, &mut out).expect("the bound is enough");
    let back = snap::raw::Decoder::new().decompress_vec(&out[..n]).expect("a valid snappy block");
    assert_eq!(back, input);
}

fuzz_target!(|data: &[u8]| {
    match data.first().map_or(0, |b| b % 3) {
        0 => check::<256>(data),
        1 => check::<4096>(data),
        _ => check::<16384>(data),
    }
});
