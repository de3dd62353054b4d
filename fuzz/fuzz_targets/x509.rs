//! Server certificates from the network (doctor's expiry finding, probe's TLS step) into our
//! certificate reader (src/doctor/x509.rs, on x509-cert): must never panic, and what it accepts
//! prints.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipwarden::doctor::x509;

fuzz_target!(|data: &[u8]| {
    let Some(c) = x509::parse(data) else { return };
    // A date we return must be one we can print (probe and doctor both do).
    let shown = x509::utc(c.not_after);
    assert!(shown.ends_with(" UTC"), "{shown}");
    // Trailing bytes after the certificate do not change what it says.
    let mut longer = data.to_vec();
    longer.extend_from_slice(&[0x30, 0x00]);
    assert_eq!(x509::parse(&longer), Some(c));
});
