#![no_main]
use libfuzzer_sys::fuzz_target;

// The device authorization response `robot-token init` reads from the issuer.
fuzz_target!(|data: &[u8]| {
    let _ = robot_token::source::oauth::parse_device_authorization(data);
});
