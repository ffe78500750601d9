#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = robot_token::source::oauth::parse_token_response(data);
});
