//! The in-place upgrade's state blob (`vipwarden::handover::blob`): decode must never panic on any
//! bytes, and whatever it accepts must survive an encode/decode round trip. Each input is tried
//! as a whole blob and as a payload behind a valid header (so the JSON and validation paths see
//! outside bytes, not only the checksum check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipwarden::handover::blob;

fuzz_target!(|data: &[u8]| {
    // Also as a payload behind a valid header: the JSON and validation paths see outside bytes.
    if let Ok(s) = blob::decode(data) {
        assert_eq!(blob::decode(&blob::encode(&s)).ok(), Some(s));
    }
    if let Ok(s) = blob::decode(&blob::frame(data)) {
        // Re-encoding may order or space the JSON differently; it must decode to the same state.
        assert_eq!(blob::decode(&blob::encode(&s)).ok(), Some(s));
    }
});
