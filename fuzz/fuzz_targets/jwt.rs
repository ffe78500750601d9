#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let t = robot_token::token::trim(s);
        let _ = robot_token::token::expiry(t);
        if let Ok(jwt) = robot_token::token::decode(t) {
            let _ = (jwt.expiry(), jwt.iat(), jwt.audiences(), jwt.scopes());
        }
    }
});
