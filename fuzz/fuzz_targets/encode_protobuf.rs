//! The protobuf exposition encoder over arbitrary metric sets, label values and floats: whole
//! and chunked encodes must decode strictly to exactly the families, series and values emitted.
#![no_main]

use diag_fuzz::{EncodeCase, run_protobuf_case};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: EncodeCase| run_protobuf_case(&case));
