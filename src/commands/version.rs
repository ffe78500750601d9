//! `robot-token --version`: the version, the compiled-in features, and whether this
//! host's GSSAPI library (needed for Kerberos logins to Vault) can be loaded. The probe
//! runs only here, never on the `get` path.

/// Cargo features this binary was built with.
pub fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "test-hooks") {
        f.push("test-hooks");
    }
    f
}

/// The MIT Kerberos GSSAPI library, as loaded at run time for Kerberos logins.
pub const GSSAPI_LIBRARY: &str = "libgssapi_krb5.so.2";

/// Can the system's GSSAPI library be loaded, with every entry point Kerberos logins
/// use? (`gssapi::available`, which opens it and closes it again.)
pub fn gssapi_found() -> bool {
    crate::source::vault::gssapi::available()
}

pub fn text() -> String {
    let features = features();
    format!(
        "robot-token {}\nfeatures: {}\nGSSAPI (Kerberos logins to Vault): {GSSAPI_LIBRARY} {}\n",
        env!("CARGO_PKG_VERSION"),
        if features.is_empty() {
            "none".to_string()
        } else {
            features.join(", ")
        },
        if gssapi_found() {
            "found"
        } else {
            "not found (install libgssapi-krb5-2 or krb5-libs for Kerberos)"
        }
    )
}
