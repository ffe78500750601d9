//! GSSAPI failures: the status words a call returns (RFC 2744 section 3.9.1), the
//! [`GssError`] made of them, and what a caller should do about each (the Kerberos
//! and errno codes MIT passes through as minor status).
//!
//! Separate from the bindings ([`super::ffi`]) and the SPNEGO logic ([`super`]): it
//! needs neither, both build their errors from it, and the classification table is
//! what changes when a new failure must be told apart.

use std::fmt;

// Major status layout (RFC 2744 section 3.9.1, MIT gssapi.h).
const GSS_CALLING_ERROR_MASK: u32 = 0xff << 24;
const GSS_ROUTINE_ERROR_MASK: u32 = 0xff << 16;
const GSS_S_NO_CRED: u32 = 7 << 16;
const GSS_S_DEFECTIVE_CREDENTIAL: u32 = 10 << 16;
const GSS_S_CREDENTIALS_EXPIRED: u32 = 11 << 16;

/// True when a major status is a failure (not GSS_S_COMPLETE or a supplementary
/// status such as GSS_S_CONTINUE_NEEDED).
pub(super) fn gss_error(major: u32) -> bool {
    major & (GSS_CALLING_ERROR_MASK | GSS_ROUTINE_ERROR_MASK) != 0
}

/// What a caller should do about a [`GssError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GssErrorKind {
    /// The GSSAPI library is missing or too old: a person must install it.
    LibraryUnavailable,
    /// The KDC could not be reached (network, DNS, KDC busy): try again later.
    KdcUnreachable,
    /// The KDC or the keytab refused the credentials: unknown client, wrong or
    /// stale key, expired or revoked principal, no usable key in the keytab,
    /// keytab missing or unreadable, expired ticket and no keytab to renew it.
    /// A person must act.
    CredentialsRejected,
    /// Anything else (bad service name, unknown service principal, clock
    /// skew, configuration errors). Not temporary.
    Other,
}

/// A GSSAPI failure: which step failed, the status codes, and the library's
/// own description of them. Never contains token bytes.
#[derive(Debug, Clone)]
pub struct GssError {
    pub(super) kind: GssErrorKind,
    pub(super) step: &'static str,
    pub(super) major: u32,
    pub(super) minor: u32,
    pub(super) message: String,
}

impl GssError {
    pub(super) fn library(message: String) -> GssError {
        GssError {
            kind: GssErrorKind::LibraryUnavailable,
            step: "loading the GSSAPI library",
            major: 0,
            minor: 0,
            message,
        }
    }

    pub(super) fn other(step: &'static str, message: String) -> GssError {
        GssError {
            kind: GssErrorKind::Other,
            step,
            major: 0,
            minor: 0,
            message,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> GssErrorKind {
        self.kind
    }

    /// True when retrying later may succeed without anyone acting (the KDC
    /// could not be reached).
    pub fn is_temporary(&self) -> bool {
        self.kind == GssErrorKind::KdcUnreachable
    }

    /// The GSSAPI major status (0 when the error did not come from a call).
    pub fn major_status(&self) -> u32 {
        self.major
    }

    /// The mechanism's minor status, for Kerberos a `krb5_error_code` as u32.
    pub fn minor_status(&self) -> u32 {
        self.minor
    }

    /// The step that failed, e.g. "acquiring Kerberos credentials".
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// The library's text for the status codes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the KDC does not know the service principal asked for (so another
    /// service name, e.g. `HTTP@` instead of `host@`, may be worth a try).
    pub fn is_unknown_service(&self) -> bool {
        self.minor as i32 == krb5::KDC_ERR_S_PRINCIPAL_UNKNOWN
    }
}

impl fmt::Display for GssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == GssErrorKind::LibraryUnavailable {
            return f.write_str(&self.message);
        }
        write!(f, "Kerberos: {} failed: {}", self.step, self.message)
    }
}

impl std::error::Error for GssError {}

// krb5_error_code values (MIT com_err table "krb5", base -1765328384).
pub(super) mod krb5 {
    const BASE: i32 = -1_765_328_384;
    pub const KDC_ERR_C_PRINCIPAL_UNKNOWN: i32 = BASE + 6;
    pub const KDC_ERR_S_PRINCIPAL_UNKNOWN: i32 = BASE + 7;
    pub const KDC_ERR_NAME_EXP: i32 = BASE + 1;
    pub const KDC_ERR_POLICY: i32 = BASE + 12;
    pub const KDC_ERR_CLIENT_REVOKED: i32 = BASE + 18;
    pub const KDC_ERR_TGT_REVOKED: i32 = BASE + 20;
    pub const KDC_ERR_KEY_EXP: i32 = BASE + 23;
    pub const KDC_ERR_PREAUTH_FAILED: i32 = BASE + 24;
    pub const KDC_ERR_SVC_UNAVAILABLE: i32 = BASE + 29;
    pub const AP_ERR_BAD_INTEGRITY: i32 = BASE + 31;
    pub const AP_ERR_TKT_EXPIRED: i32 = BASE + 32;
    pub const CC_NOTFOUND: i32 = BASE + 141;
    pub const KDC_UNREACH: i32 = BASE + 156;
    pub const KT_NOTFOUND: i32 = BASE + 181;
    pub const FCC_NOFILE: i32 = BASE + 195;
    pub const NO_CRED_ENCTYPES: i32 = BASE + 200;
    pub const PREAUTH_FAILED: i32 = BASE + 210;
    pub const REALM_CANT_RESOLVE: i32 = BASE + 220;
    pub const KT_BADFORMAT: i32 = BASE + 235;
    // MIT krb5 GSS mechanism table "k5g" (base 39756032).
    const K5G: i32 = 39_756_032;
    pub const KG_CCACHE_NOMATCH: i32 = K5G;
    pub const KG_KEYTAB_NOMATCH: i32 = K5G + 1;
    pub const KG_EMPTY_CCACHE: i32 = K5G + 12;
}

// errno values (Linux) that MIT passes through as minor status.
const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const ENETUNREACH: i32 = 101;
const ECONNREFUSED: i32 = 111;
const ETIMEDOUT: i32 = 110;
const EHOSTUNREACH: i32 = 113;

pub(super) fn classify(major: u32, minor: u32) -> GssErrorKind {
    let code = minor as i32;
    match code {
        krb5::KDC_UNREACH
        | krb5::REALM_CANT_RESOLVE
        | krb5::KDC_ERR_SVC_UNAVAILABLE
        | ENETUNREACH
        | ECONNREFUSED
        | ETIMEDOUT
        | EHOSTUNREACH => GssErrorKind::KdcUnreachable,
        krb5::KDC_ERR_C_PRINCIPAL_UNKNOWN
        | krb5::KDC_ERR_NAME_EXP
        | krb5::KDC_ERR_POLICY
        | krb5::KDC_ERR_CLIENT_REVOKED
        | krb5::KDC_ERR_TGT_REVOKED
        | krb5::AP_ERR_TKT_EXPIRED
        | krb5::KDC_ERR_KEY_EXP
        | krb5::KDC_ERR_PREAUTH_FAILED
        | krb5::AP_ERR_BAD_INTEGRITY
        | krb5::CC_NOTFOUND
        | krb5::KT_NOTFOUND
        | krb5::FCC_NOFILE
        | krb5::NO_CRED_ENCTYPES
        | krb5::PREAUTH_FAILED
        | krb5::KT_BADFORMAT
        | krb5::KG_CCACHE_NOMATCH
        | krb5::KG_KEYTAB_NOMATCH
        | krb5::KG_EMPTY_CCACHE
        | ENOENT
        | EACCES => GssErrorKind::CredentialsRejected,
        _ => match major & GSS_ROUTINE_ERROR_MASK {
            GSS_S_NO_CRED | GSS_S_DEFECTIVE_CREDENTIAL | GSS_S_CREDENTIALS_EXPIRED => {
                GssErrorKind::CredentialsRejected
            }
            _ => GssErrorKind::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use krb5::*;
        use GssErrorKind::{CredentialsRejected as Rejected, KdcUnreachable, Other};
        // A routine failure (GSS_S_FAILURE) whose minor status says why.
        let failure = 13 << 16;
        for (major, minor, kind) in [
            (failure, KDC_UNREACH, KdcUnreachable),
            (failure, KDC_ERR_PREAUTH_FAILED, Rejected),
            (failure, KDC_ERR_C_PRINCIPAL_UNKNOWN, Rejected),
            (failure, AP_ERR_TKT_EXPIRED, Rejected),
            (GSS_S_NO_CRED, 0, Rejected),
            (2 << 16, 0, Other),
        ] {
            assert_eq!(classify(major, minor as u32), kind, "{major:#x} {minor}");
        }
    }
}
