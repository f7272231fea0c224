//! Well-formed segments, application calls and clock advances against one connection; see
//! `synack_fuzz::segment_sequence`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: synack_fuzz::segment_sequence::Input| synack_fuzz::segment_sequence::run(&input));
