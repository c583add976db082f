//! The OpenMetrics 1.0 encoder over arbitrary metric sets, label values and floats: whole and
//! chunked encodes must be identical and parse back exactly with the strict parser
//! (`_total`, `# EOF`, bucket order, `+Inf`, escapes).
#![no_main]

use diag_core::Format;
use diag_fuzz::{EncodeCase, run_encode_case};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: EncodeCase| run_encode_case(Format::OpenMetrics, &case));
