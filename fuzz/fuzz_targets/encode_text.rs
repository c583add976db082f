//! The Prometheus 0.0.4 encoder over arbitrary metric sets, label values and floats: whole and
//! chunked encodes must be identical and parse back exactly with the strict parser.
#![no_main]

use diag_core::Format;
use diag_fuzz::{EncodeCase, run_encode_case};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: EncodeCase| run_encode_case(Format::Prometheus, &case));
