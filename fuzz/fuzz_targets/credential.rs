#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("fuzz.json");
    if let Ok(c) = robot_token::source::credential::Credential::parse(data, p) {
        if let Ok(out) = c.render_with_refresh_token(&robot_token::secret::Secret::new("r")) {
            assert!(robot_token::source::credential::Credential::parse(&out, p).is_ok());
        }
    }
});
