//! Arbitrary bytes as packets into a listening host that already has connections; see
//! `synack_fuzz::packet_input`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| synack_fuzz::packet_input::run(data));
