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
//! Only the C declarations this needs are written out below, following
//! RFC 2744 and MIT's `<gssapi/gssapi.h>` / `<gssapi/gssapi_ext.h>` on Linux
//! (natural C alignment; MIT packs these structs only on macOS).
//!
//! Errors never carry token bytes: only status codes and the library's text
//! for them (`gss_display_status`).

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void, CString};
use std::fmt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr;

use libloading::Library;
use zeroize::Zeroizing;

// ---------------------------------------------------------------------------
// C types (RFC 2744 section 3, MIT gssapi.h)
// ---------------------------------------------------------------------------

type OM_uint32 = u32;
type gss_name_t = *mut c_void;
type gss_cred_id_t = *mut c_void;
type gss_ctx_id_t = *mut c_void;
type gss_cred_usage_t = c_int;
type gss_channel_bindings_t = *mut c_void;

#[repr(C)]
struct gss_buffer_desc {
    length: usize,
    value: *mut c_void,
}

#[repr(C)]
struct gss_OID_desc {
    length: OM_uint32,
    elements: *mut c_void,
}

#[repr(C)]
struct gss_key_value_element_desc {
    key: *const c_char,
    value: *const c_char,
}

#[repr(C)]
struct gss_key_value_set_desc {
    count: OM_uint32,
    elements: *mut gss_key_value_element_desc,
}

type gss_OID = *mut gss_OID_desc;
type gss_buffer_t = *mut gss_buffer_desc;
type gss_OID_set = *mut c_void; // only ever passed as GSS_C_NO_OID_SET / out-param NULL

const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;
const GSS_C_INITIATE: gss_cred_usage_t = 1;
const GSS_C_INDEFINITE: OM_uint32 = 0xffff_ffff;
/// Replay and sequence detection, as curl and htgettoken ask for; no
/// GSS_C_MUTUAL_FLAG because the login endpoint answers with one token only.
const REQ_FLAGS: OM_uint32 = 4 | 8;

const GSS_CALLING_ERROR_MASK: OM_uint32 = 0xff << 24;
const GSS_ROUTINE_ERROR_MASK: OM_uint32 = 0xff << 16;
const GSS_S_NO_CRED: OM_uint32 = 7 << 16;
const GSS_S_DEFECTIVE_CREDENTIAL: OM_uint32 = 10 << 16;
const GSS_S_CREDENTIALS_EXPIRED: OM_uint32 = 11 << 16;

fn gss_error(major: OM_uint32) -> bool {
    major & (GSS_CALLING_ERROR_MASK | GSS_ROUTINE_ERROR_MASK) != 0
}

// ---------------------------------------------------------------------------
// OIDs
// ---------------------------------------------------------------------------

/// A `gss_OID_desc` that may live in a `static`.
#[repr(transparent)]
struct StaticOid(gss_OID_desc);

// SAFETY: the descriptor and the bytes it points to are immutable statics.
// GSSAPI takes `gss_OID` (non-const) parameters for historical reasons but
// never writes through OIDs passed as inputs (RFC 2744 section 3.6), so
// sharing them between threads is sound.
unsafe impl Sync for StaticOid {}

impl StaticOid {
    fn as_ptr(&'static self) -> gss_OID {
        &self.0 as *const gss_OID_desc as gss_OID
    }
}

macro_rules! static_oid {
    ($name:ident, $bytes:expr) => {
        static $name: StaticOid = {
            const BYTES: &[u8] = $bytes;
            // OIDs are a few bytes long: the length always fits.
            #[allow(clippy::cast_possible_truncation)]
            StaticOid(gss_OID_desc {
                length: BYTES.len() as OM_uint32,
                elements: BYTES.as_ptr() as *mut c_void,
            })
        };
    };
}

// 1.3.6.1.5.5.2
static_oid!(SPNEGO_MECH, b"\x2b\x06\x01\x05\x05\x02");
// 1.2.840.113554.1.2.2 (Kerberos 5 mechanism)
static_oid!(KRB5_MECH, b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02");
// 1.2.840.113554.1.2.1.4 (GSS_C_NT_HOSTBASED_SERVICE)
static_oid!(
    NT_HOSTBASED_SERVICE,
    b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"
);
// 1.2.840.113554.1.2.2.1 (GSS_KRB5_NT_PRINCIPAL_NAME)
static_oid!(
    NT_KRB5_PRINCIPAL,
    b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01"
);

// ---------------------------------------------------------------------------
// Function pointer types (exact C prototypes)
// ---------------------------------------------------------------------------

type FnImportName = unsafe extern "C" fn(
    minor: *mut OM_uint32,
    input_name_buffer: gss_buffer_t,
    input_name_type: gss_OID,
    output_name: *mut gss_name_t,
) -> OM_uint32;
type FnReleaseName =
    unsafe extern "C" fn(minor: *mut OM_uint32, name: *mut gss_name_t) -> OM_uint32;
type FnDisplayName = unsafe extern "C" fn(
    minor: *mut OM_uint32,
    input_name: gss_name_t,
    output_name_buffer: gss_buffer_t,
    output_name_type: *mut gss_OID,
) -> OM_uint32;
type FnInitSecContext = unsafe extern "C" fn(
    minor: *mut OM_uint32,
    claimant_cred_handle: gss_cred_id_t,
    context_handle: *mut gss_ctx_id_t,
    target_name: gss_name_t,
    mech_type: gss_OID,
    req_flags: OM_uint32,
    time_req: OM_uint32,
    input_chan_bindings: gss_channel_bindings_t,
    input_token: gss_buffer_t,
    actual_mech_type: *mut gss_OID,
    output_token: gss_buffer_t,
    ret_flags: *mut OM_uint32,
    time_rec: *mut OM_uint32,
) -> OM_uint32;
type FnDeleteSecContext = unsafe extern "C" fn(
    minor: *mut OM_uint32,
    context_handle: *mut gss_ctx_id_t,
    output_token: gss_buffer_t,
) -> OM_uint32;
type FnReleaseBuffer =
    unsafe extern "C" fn(minor: *mut OM_uint32, buffer: gss_buffer_t) -> OM_uint32;
type FnDisplayStatus = unsafe extern "C" fn(
    minor: *mut OM_uint32,
    status_value: OM_uint32,
    status_type: c_int,
    mech_type: gss_OID,
    message_context: *mut OM_uint32,
    status_string: gss_buffer_t,
) -> OM_uint32;
type FnAcquireCredFrom = unsafe extern "C" fn(
    minor: *mut OM_uint32,
    desired_name: gss_name_t,
    time_req: OM_uint32,
    desired_mechs: gss_OID_set,
    cred_usage: gss_cred_usage_t,
    cred_store: *const gss_key_value_set_desc,
    output_cred_handle: *mut gss_cred_id_t,
    actual_mechs: *mut gss_OID_set,
    time_rec: *mut OM_uint32,
) -> OM_uint32;
type FnReleaseCred =
    unsafe extern "C" fn(minor: *mut OM_uint32, cred: *mut gss_cred_id_t) -> OM_uint32;
type FnInquireCred = unsafe extern "C" fn(
    minor: *mut OM_uint32,
    cred_handle: gss_cred_id_t,
    name: *mut gss_name_t,
    lifetime: *mut OM_uint32,
    cred_usage: *mut gss_cred_usage_t,
    mechanisms: *mut gss_OID_set,
) -> OM_uint32;

/// The file names tried, in order, by [`Gssapi::load`].
pub const LIBRARY_NAMES: &[&str] = &["libgssapi_krb5.so.2", "libgssapi_krb5.so"];

const INSTALL_HINT: &str = "Kerberos support needs the system GSSAPI library: \
install libgssapi-krb5-2 (Debian/Ubuntu) or krb5-libs (RHEL)";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

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
    kind: GssErrorKind,
    step: &'static str,
    major: u32,
    minor: u32,
    message: String,
}

impl GssError {
    fn library(message: String) -> GssError {
        GssError {
            kind: GssErrorKind::LibraryUnavailable,
            step: "loading the GSSAPI library",
            major: 0,
            minor: 0,
            message,
        }
    }

    fn other(step: &'static str, message: String) -> GssError {
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
mod krb5 {
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

fn classify(major: OM_uint32, minor: OM_uint32) -> GssErrorKind {
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

// ---------------------------------------------------------------------------
// The library
// ---------------------------------------------------------------------------

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

/// The loaded GSSAPI library and the entry points this module uses.
pub struct Gssapi {
    import_name: FnImportName,
    release_name: FnReleaseName,
    display_name: FnDisplayName,
    init_sec_context: FnInitSecContext,
    delete_sec_context: FnDeleteSecContext,
    release_buffer: FnReleaseBuffer,
    display_status: FnDisplayStatus,
    acquire_cred_from: FnAcquireCredFrom,
    release_cred: FnReleaseCred,
    inquire_cred: FnInquireCred,
    // Declared last so it is dropped last; the function pointers above are
    // only valid while this is loaded, and they are private to this struct.
    _lib: Library,
}

impl fmt::Debug for Gssapi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gssapi").finish_non_exhaustive()
    }
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
    /// Opens the system GSSAPI library (see [`LIBRARY_NAMES`]).
    pub fn load() -> Result<Gssapi, GssError> {
        let mut first_err: Option<String> = None;
        // Test-only: name another library, to prove the message when it is missing.
        #[cfg(feature = "test-hooks")]
        let test_name = std::env::var("ROBOT_TOKEN_TEST_GSSAPI_LIBRARY").ok();
        #[cfg(feature = "test-hooks")]
        let names: Vec<&str> = match &test_name {
            Some(n) => vec![n.as_str()],
            None => LIBRARY_NAMES.to_vec(),
        };
        #[cfg(not(feature = "test-hooks"))]
        let names = LIBRARY_NAMES;
        for name in names {
            // SAFETY: loading runs the library's initialisers. This is the
            // system MIT Kerberos GSSAPI library, whose initialisers only set
            // up its own state (error tables, mutexes); it is the same library
            // any GSSAPI-linked program loads at start-up.
            match unsafe { Library::new(name) } {
                Ok(lib) => return Gssapi::from_library(lib),
                Err(e) => {
                    first_err.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let detail = first_err.unwrap_or_default();
        Err(GssError::library(format!("{INSTALL_HINT} ({detail})")))
    }

    fn from_library(lib: Library) -> Result<Gssapi, GssError> {
        /// Looks `name` up and copies out the function pointer.
        ///
        /// SAFETY (caller): `T` must be the exact C prototype of `name`.
        unsafe fn sym<T: Copy>(lib: &Library, name: &str) -> Result<T, GssError> {
            // SAFETY: per the caller's contract the type matches the symbol.
            match unsafe { lib.get::<T>(name.as_bytes()) } {
                Ok(s) => Ok(*s),
                Err(e) => Err(GssError::library(format!(
                    "{INSTALL_HINT}: the loaded GSSAPI library lacks {name} \
                     (MIT Kerberos 1.11 or newer is needed): {e}"
                ))),
            }
        }
        // SAFETY: each type alias above is written from the prototype in
        // MIT's <gssapi/gssapi.h> / <gssapi/gssapi_ext.h>. The copied
        // pointers are stored next to `lib` in the returned struct, which
        // keeps the library loaded for as long as they can be called.
        unsafe {
            Ok(Gssapi {
                import_name: sym(&lib, "gss_import_name")?,
                release_name: sym(&lib, "gss_release_name")?,
                display_name: sym(&lib, "gss_display_name")?,
                init_sec_context: sym(&lib, "gss_init_sec_context")?,
                delete_sec_context: sym(&lib, "gss_delete_sec_context")?,
                release_buffer: sym(&lib, "gss_release_buffer")?,
                display_status: sym(&lib, "gss_display_status")?,
                acquire_cred_from: sym(&lib, "gss_acquire_cred_from")?,
                release_cred: sym(&lib, "gss_release_cred")?,
                inquire_cred: sym(&lib, "gss_inquire_cred")?,
                _lib: lib,
            })
        }
    }

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
        let mut ctx = Context {
            gss: self,
            handle: ptr::null_mut(),
        };
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
        let mut name = Name {
            gss: self,
            handle: ptr::null_mut(),
        };
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
        let mut cred = Cred {
            gss: self,
            handle: ptr::null_mut(),
        };
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
        let mut name = Name {
            gss: self,
            handle: ptr::null_mut(),
        };
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

// ---------------------------------------------------------------------------
// Guards: each releases its GSSAPI object on drop, on every path.
// ---------------------------------------------------------------------------

struct Name<'a> {
    gss: &'a Gssapi,
    handle: gss_name_t,
}

impl Drop for Name<'_> {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            let mut minor = 0;
            // SAFETY: the handle came from gss_import_name/gss_inquire_cred
            // and is released exactly once (the call resets it to null).
            unsafe { (self.gss.release_name)(&mut minor, &mut self.handle) };
        }
    }
}

struct Cred<'a> {
    gss: &'a Gssapi,
    handle: gss_cred_id_t,
}

impl Drop for Cred<'_> {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            let mut minor = 0;
            // SAFETY: the handle came from gss_acquire_cred_from and is
            // released exactly once (the call resets it to null).
            unsafe { (self.gss.release_cred)(&mut minor, &mut self.handle) };
        }
    }
}

struct Context<'a> {
    gss: &'a Gssapi,
    handle: gss_ctx_id_t,
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            let mut minor = 0;
            // SAFETY: the handle came from gss_init_sec_context (which may set
            // it even on failure) and is deleted exactly once; a null output
            // token (GSS_C_NO_BUFFER) asks for no context-deletion token.
            unsafe { (self.gss.delete_sec_context)(&mut minor, &mut self.handle, ptr::null_mut()) };
        }
    }
}

struct Buffer<'a> {
    gss: &'a Gssapi,
    desc: gss_buffer_desc,
}

impl<'a> Buffer<'a> {
    fn new(gss: &'a Gssapi) -> Buffer<'a> {
        Buffer {
            gss,
            desc: gss_buffer_desc {
                length: 0,
                value: ptr::null_mut(),
            },
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        if self.desc.value.is_null() || self.desc.length == 0 {
            return Vec::new();
        }
        // SAFETY: the library filled `desc` with a buffer of `length` bytes
        // that stays allocated until gss_release_buffer in Drop.
        unsafe { std::slice::from_raw_parts(self.desc.value as *const u8, self.desc.length) }
            .to_vec()
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        if !self.desc.value.is_null() {
            let mut minor = 0;
            // SAFETY: `desc` was filled by the same library and is released
            // exactly once (the call resets it to empty).
            unsafe { (self.gss.release_buffer)(&mut minor, &mut self.desc) };
        }
    }
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

    #[test]
    fn classification() {
        assert_eq!(
            classify(13 << 16, krb5::KDC_UNREACH as u32),
            GssErrorKind::KdcUnreachable
        );
        assert_eq!(
            classify(13 << 16, krb5::KDC_ERR_PREAUTH_FAILED as u32),
            GssErrorKind::CredentialsRejected
        );
        assert_eq!(
            classify(13 << 16, krb5::KDC_ERR_C_PRINCIPAL_UNKNOWN as u32),
            GssErrorKind::CredentialsRejected
        );
        assert_eq!(
            classify(13 << 16, krb5::AP_ERR_TKT_EXPIRED as u32),
            GssErrorKind::CredentialsRejected
        );
        assert_eq!(
            classify(GSS_S_NO_CRED, 0),
            GssErrorKind::CredentialsRejected
        );
        assert_eq!(classify(2 << 16, 0), GssErrorKind::Other);
    }

    #[test]
    fn oids() {
        assert_eq!(SPNEGO_MECH.0.length, 6);
        assert_eq!(NT_HOSTBASED_SERVICE.0.length, 10);
        assert_eq!(NT_KRB5_PRINCIPAL.0.length, 10);
    }
}
