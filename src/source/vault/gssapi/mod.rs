//! Kerberos (SPNEGO) client tokens through the system GSSAPI library,
//! loaded at run time.
//!
//! The crate must build on machines without Kerberos headers or libclang, so
//! nothing here is linked at build time: `libgssapi_krb5.so.2` (MIT Kerberos;
//! Debian/Ubuntu `libgssapi-krb5-2`, RHEL `krb5-libs`) is opened with
//! [`libloading`] the first time Kerberos is needed, and a missing library is
//! an ordinary, explained error.
//!
//! The one job of this module is what htgettoken does for an htvault-config
//! server: produce the single GSSAPI token that goes into
//! `Authorization: Negotiate <base64>` on `POST /v1/auth/kerberos-*/login`.
//! Initiator credentials come from a keytab through MIT's credential-store
//! extension (`gss_acquire_cred_from` with `client_keytab` and `ccache`), so
//! tickets live in a private credential cache and the user's default cache is
//! never read or changed. A ticket still valid in that cache is reused; an
//! expired one is renewed from the keytab by the library itself.
//!
//! The C declarations and the library's entry points are in [`ffi`]; the errors
//! and what each means for the caller in [`error`]; this file is the logic that
//! calls them.
//!
//! Errors never carry token bytes: only status codes and the library's text
//! for them (`gss_display_status`).

mod error;
mod ffi;

use std::ffi::{c_int, c_void, CString};
use std::fmt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr;

use zeroize::Zeroizing;

pub use self::error::{GssError, GssErrorKind};
pub use self::ffi::{Gssapi, LIBRARY_NAMES};

use self::error::{classify, gss_error, krb5};
use self::ffi::{
    gss_buffer_desc, gss_key_value_element_desc, gss_key_value_set_desc, Buffer, Context, Cred,
    Name, OM_uint32, StaticOid, GSS_C_GSS_CODE, GSS_C_INDEFINITE, GSS_C_INITIATE, GSS_C_MECH_CODE,
    KRB5_MECH, NT_HOSTBASED_SERVICE, NT_KRB5_PRINCIPAL, SPNEGO_MECH,
};

/// Replay and sequence detection, as curl and htgettoken ask for; no
/// GSS_C_MUTUAL_FLAG because the login endpoint answers with one token only.
const REQ_FLAGS: OM_uint32 = 4 | 8;

/// True if the system GSSAPI library can be loaded.
pub fn available() -> bool {
    shared().is_ok()
}

/// The library, loaded once and kept for the life of the process: MIT Kerberos
/// registers library destructors and thread-specific data, and unloading it while
/// the process goes on (dlclose) is not something it promises to survive.
pub fn shared() -> Result<&'static Gssapi, GssError> {
    static LIB: std::sync::OnceLock<Result<Gssapi, GssError>> = std::sync::OnceLock::new();
    LIB.get_or_init(Gssapi::load).as_ref().map_err(Clone::clone)
}

/// The result of [`Gssapi::negotiate`].
#[derive(Clone)]
pub struct Negotiated {
    /// The GSSAPI (SPNEGO) token for `Authorization: Negotiate <base64>`: a
    /// credential for a few minutes, wiped on drop.
    pub token: Zeroizing<Vec<u8>>,
    /// The client principal whose credentials were used, if the library
    /// could name it (e.g. `robot/ci.example.org@ROBOT.TEST`).
    pub principal: Option<String>,
}

impl fmt::Debug for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Negotiated")
            .field("token_len", &self.token.len())
            .field("principal", &self.principal)
            .finish()
    }
}

impl Gssapi {
    /// The GSSAPI token (SPNEGO mechanism, one `gss_init_sec_context` call)
    /// for `service` in host-based form (`"HTTP@vault.example.org"`,
    /// `"host@localhost"`), using initiator credentials from `client_keytab`
    /// (when given) kept in the private credential cache `ccache`, for
    /// `principal` (when given; otherwise the cache's principal, or the first
    /// one in the keytab).
    ///
    /// `ccache` is a path (`FILE:` is implied) or a full cache name such as
    /// `FILE:/run/robot/krb5cc` or `MEMORY:x`; use one cache per principal.
    pub fn spnego_token(
        &self,
        service: &str,
        client_keytab: Option<&Path>,
        ccache: &Path,
        principal: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, GssError> {
        self.negotiate(service, client_keytab, ccache, principal)
            .map(|n| n.token)
    }

    /// Like [`Gssapi::spnego_token`], also naming the client principal used.
    pub fn negotiate(
        &self,
        service: &str,
        client_keytab: Option<&Path>,
        ccache: &Path,
        principal: Option<&str>,
    ) -> Result<Negotiated, GssError> {
        let target =
            self.import_name(service, &NT_HOSTBASED_SERVICE, "importing the service name")?;
        let desired = match principal {
            Some(p) => {
                Some(self.import_name(p, &NT_KRB5_PRINCIPAL, "importing the principal name")?)
            }
            None => None,
        };
        let cred = self.acquire(desired.as_ref(), client_keytab, ccache)?;

        // Pre-flight with the Kerberos mechanism itself. It gets the service
        // ticket into the cache (the one KDC round trip), and its failures
        // carry the real krb5 error code as minor status. Failures seen
        // through SPNEGO carry a code that MIT's mechanism glue renumbers
        // (100000 and up) and that cannot be classified, e.g. "cannot
        // contact any KDC" while fetching the service ticket. The Kerberos
        // token made here is dropped unsent.
        self.init_token(
            &cred,
            &target,
            &KRB5_MECH,
            "getting a Kerberos service ticket",
        )?;
        // The one SPNEGO call; the service ticket now comes from the cache.
        let token = self.init_token(&cred, &target, &SPNEGO_MECH, "creating the SPNEGO token")?;
        // Asked last: before the first exchange a keytab-only credential may
        // not know its principal yet.
        let principal = self.cred_principal(&cred);
        Ok(Negotiated { token, principal })
        // `cred`, `desired` and `target` are released here by their guards,
        // on this and on every early-return path.
    }

    /// One gss_init_sec_context call for `mech`; returns the output token.
    fn init_token(
        &self,
        cred: &Cred<'_>,
        target: &Name<'_>,
        mech: &'static StaticOid,
        step: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>, GssError> {
        let mut minor: OM_uint32 = 0;
        let mut ctx = Context::new(self);
        let mut out = Buffer::new(self);
        // SAFETY: every pointer is either null where RFC 2744 allows
        // GSS_C_NO_* (channel bindings, input token, actual mech, ret flags,
        // time) or points to a live, correctly typed local. The target name
        // and credential handles are valid (owned by guards that outlive the
        // call). The mech OID is a static that the library only reads.
        let major = unsafe {
            (self.init_sec_context)(
                &mut minor,
                cred.handle,
                &mut ctx.handle,
                target.handle,
                mech.as_ptr(),
                REQ_FLAGS,
                0,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut out.desc,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if gss_error(major) {
            return Err(self.error(step, major, minor));
        }
        // Not an error: GSS_S_COMPLETE, or (usual for SPNEGO)
        // GSS_S_CONTINUE_NEEDED because SPNEGO would next read the server's
        // NegTokenResp. The login endpoint takes this one token, so the
        // context is not continued; `ctx` and `out` are released on return.
        let token = Zeroizing::new(out.to_vec());
        if token.is_empty() {
            return Err(GssError::other(
                step,
                "the GSSAPI library returned an empty token".to_string(),
            ));
        }
        Ok(token)
    }

    fn import_name(
        &self,
        text: &str,
        name_type: &'static StaticOid,
        step: &'static str,
    ) -> Result<Name<'_>, GssError> {
        if text.is_empty() || text.contains('\0') {
            return Err(GssError::other(step, format!("invalid name {text:?}")));
        }
        let mut buf = gss_buffer_desc {
            length: text.len(),
            value: text.as_ptr() as *mut c_void,
        };
        let mut name = Name::new(self);
        let mut minor: OM_uint32 = 0;
        // SAFETY: `buf` describes `text`'s bytes, which outlive the call and
        // which gss_import_name only reads (it copies them). The output goes
        // into a guard that releases it.
        let major = unsafe {
            (self.import_name)(&mut minor, &mut buf, name_type.as_ptr(), &mut name.handle)
        };
        if gss_error(major) {
            return Err(self.error(step, major, minor));
        }
        Ok(name)
    }

    fn acquire(
        &self,
        desired: Option<&Name<'_>>,
        client_keytab: Option<&Path>,
        ccache: &Path,
    ) -> Result<Cred<'_>, GssError> {
        const STEP: &str = "acquiring Kerberos credentials";
        let cstring = |v: Vec<u8>| {
            CString::new(v)
                .map_err(|_| GssError::other(STEP, "path contains a NUL byte".to_string()))
        };
        let ccache_name = cstring(store_name(ccache))?;
        let keytab_name = match client_keytab {
            Some(k) => {
                check_keytab(k)?;
                Some(cstring(store_name(k))?)
            }
            None => None,
        };
        let mut elements = vec![gss_key_value_element_desc {
            key: c"ccache".as_ptr(),
            value: ccache_name.as_ptr(),
        }];
        if let Some(k) = &keytab_name {
            elements.push(gss_key_value_element_desc {
                key: c"client_keytab".as_ptr(),
                value: k.as_ptr(),
            });
        }
        let store = gss_key_value_set_desc {
            count: if keytab_name.is_some() { 2 } else { 1 },
            elements: elements.as_mut_ptr(),
        };
        let mut cred = Cred::new(self);
        let mut minor: OM_uint32 = 0;
        // SAFETY: `store` points to `elements`, whose key/value pointers
        // point to NUL-terminated strings (`c"..."` literals and the CStrings
        // above) that all outlive the call; the library only reads them.
        // Null desired_mechs / actual_mechs / time_rec are GSS_C_NO_OID_SET
        // and "not wanted". The output handle goes into a releasing guard.
        let major = unsafe {
            (self.acquire_cred_from)(
                &mut minor,
                desired.map_or(ptr::null_mut(), |n| n.handle),
                GSS_C_INDEFINITE,
                ptr::null_mut(),
                GSS_C_INITIATE,
                &store,
                &mut cred.handle,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if gss_error(major) {
            let mut err = self.error(STEP, major, minor);
            if minor as i32 == krb5::FCC_NOFILE && client_keytab.is_some() {
                // MIT's words for "no ticket cached and the keytab cannot
                // provide one" are only "No credentials cache found".
                err.message.push_str(
                    " (no valid ticket in the cache, and the client keytab \
                     holds no key for the requested principal)",
                );
            }
            return Err(err);
        }
        Ok(cred)
    }

    /// The principal of `cred`, or None if the library cannot tell (yet).
    fn cred_principal(&self, cred: &Cred<'_>) -> Option<String> {
        let mut minor: OM_uint32 = 0;
        let mut name = Name::new(self);
        // SAFETY: `cred.handle` is a valid credential; only the name output
        // is requested (the other out-pointers are null = not wanted), and it
        // goes into a releasing guard.
        let major = unsafe {
            (self.inquire_cred)(
                &mut minor,
                cred.handle,
                &mut name.handle,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if gss_error(major) || name.handle.is_null() {
            return None;
        }
        let mut out = Buffer::new(self);
        // SAFETY: `name.handle` is a valid name; the text goes into a
        // releasing buffer guard; the name-type out-pointer may be null.
        let major =
            unsafe { (self.display_name)(&mut minor, name.handle, &mut out.desc, ptr::null_mut()) };
        if gss_error(major) {
            return None;
        }
        String::from_utf8(out.to_vec())
            .ok()
            .filter(|s| !s.is_empty())
    }

    fn error(&self, step: &'static str, major: OM_uint32, minor: OM_uint32) -> GssError {
        let mut message = self.status_text(major, GSS_C_GSS_CODE);
        if minor != 0 {
            let m = self.status_text(minor, GSS_C_MECH_CODE);
            if !m.is_empty() {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&m);
            }
        }
        if message.is_empty() {
            message = format!("major status {major:#x}, minor status {minor}");
        }
        GssError {
            kind: classify(major, minor),
            step,
            major,
            minor,
            message,
        }
    }

    /// All messages for one status code, joined with "; ".
    fn status_text(&self, code: OM_uint32, kind: c_int) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut context: OM_uint32 = 0;
        // gss_display_status hands out one message per call; bound the loop
        // in case a broken library never resets the context.
        for _ in 0..8 {
            let mut minor: OM_uint32 = 0;
            let mut out = Buffer::new(self);
            // SAFETY: all pointers are to live locals; GSS_C_NO_OID (null)
            // lets the mechanism glue pick the mechanism for minor codes; the
            // text goes into a releasing buffer guard.
            let major = unsafe {
                (self.display_status)(
                    &mut minor,
                    code,
                    kind,
                    ptr::null_mut(),
                    &mut context,
                    &mut out.desc,
                )
            };
            if gss_error(major) {
                break;
            }
            let text = String::from_utf8_lossy(&out.to_vec()).trim().to_string();
            if !text.is_empty() {
                parts.push(text);
            }
            if context == 0 {
                break;
            }
        }
        parts.join("; ")
    }
}

/// The name a credential-store entry wants: paths get `FILE:` unless they
/// already name a type (`FILE:`, `DIR:`, `MEMORY:`, `KEYRING:`, `KCM:`...).
fn store_name(p: &Path) -> Vec<u8> {
    let bytes = path_bytes(p);
    let has_type = bytes
        .iter()
        .position(|&b| b == b':')
        .is_some_and(|i| i > 0 && bytes[..i].iter().all(|b| b.is_ascii_uppercase()));
    if has_type {
        bytes
    } else {
        let mut v = b"FILE:".to_vec();
        v.extend_from_slice(&bytes);
        v
    }
}

/// A clear error for a client keytab file that cannot be read; MIT would
/// only say "No credentials cache found".
fn check_keytab(keytab: &Path) -> Result<(), GssError> {
    let name = store_name(keytab);
    let Some(file) = name.strip_prefix(b"FILE:") else {
        return Ok(()); // another keytab type (MEMORY:, ...): nothing to check
    };
    let file = bytes_path(file);
    // Opened without waiting: a FIFO at the path must not hang the run.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&file);
    match opened {
        Ok(_) => Ok(()),
        Err(e) => Err(GssError {
            kind: GssErrorKind::CredentialsRejected,
            step: "acquiring Kerberos credentials",
            major: 0,
            minor: 0,
            message: format!("cannot read the client keytab {}: {e}", file.display()),
        }),
    }
}

#[cfg(unix)]
fn bytes_path(b: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b).into()
}

#[cfg(not(unix))]
fn bytes_path(b: &[u8]) -> std::path::PathBuf {
    String::from_utf8_lossy(b).into_owned().into()
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names() {
        assert_eq!(store_name(Path::new("/tmp/cc")), b"FILE:/tmp/cc".to_vec());
        assert_eq!(
            store_name(Path::new("FILE:/tmp/cc")),
            b"FILE:/tmp/cc".to_vec()
        );
        assert_eq!(store_name(Path::new("MEMORY:x")), b"MEMORY:x".to_vec());
        assert_eq!(store_name(Path::new("./a:b")), b"FILE:./a:b".to_vec());
    }
}
