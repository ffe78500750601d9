//! The C side of GSSAPI: the declarations from RFC 2744 and MIT's
//! `<gssapi/gssapi.h>` / `<gssapi/gssapi_ext.h>` that this crate calls, the table of
//! entry points looked up in `libgssapi_krb5.so.2` when it is opened at run time
//! ([`Gssapi::load`]), and guards that release each object the library hands out.
//!
//! Separate from the SPNEGO logic ([`super`]) so that every C type, symbol name and
//! ownership rule sits in one file to check against the headers; the logic above it
//! only fills and reads these through the guards.
//!
//! Only the declarations needed are written out, for Linux (natural C alignment; MIT
//! packs these structs only on macOS).

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};
use std::fmt;
use std::ptr;

use libloading::Library;

use super::error::GssError;

// ---------------------------------------------------------------------------
// C types (RFC 2744 section 3, MIT gssapi.h)
// ---------------------------------------------------------------------------

pub(super) type OM_uint32 = u32;
pub(super) type gss_name_t = *mut c_void;
pub(super) type gss_cred_id_t = *mut c_void;
pub(super) type gss_ctx_id_t = *mut c_void;
pub(super) type gss_cred_usage_t = c_int;
pub(super) type gss_channel_bindings_t = *mut c_void;

#[repr(C)]
pub(super) struct gss_buffer_desc {
    pub(super) length: usize,
    pub(super) value: *mut c_void,
}

#[repr(C)]
pub(super) struct gss_OID_desc {
    pub(super) length: OM_uint32,
    pub(super) elements: *mut c_void,
}

#[repr(C)]
pub(super) struct gss_key_value_element_desc {
    pub(super) key: *const c_char,
    pub(super) value: *const c_char,
}

#[repr(C)]
pub(super) struct gss_key_value_set_desc {
    pub(super) count: OM_uint32,
    pub(super) elements: *mut gss_key_value_element_desc,
}

pub(super) type gss_OID = *mut gss_OID_desc;
pub(super) type gss_buffer_t = *mut gss_buffer_desc;
pub(super) type gss_OID_set = *mut c_void; // only ever passed as GSS_C_NO_OID_SET / out-param NULL

pub(super) const GSS_C_GSS_CODE: c_int = 1;
pub(super) const GSS_C_MECH_CODE: c_int = 2;
pub(super) const GSS_C_INITIATE: gss_cred_usage_t = 1;
pub(super) const GSS_C_INDEFINITE: OM_uint32 = 0xffff_ffff;

// ---------------------------------------------------------------------------
// OIDs
// ---------------------------------------------------------------------------

/// A `gss_OID_desc` that may live in a `static`.
#[repr(transparent)]
pub(super) struct StaticOid(pub(super) gss_OID_desc);

// SAFETY: the descriptor and the bytes it points to are immutable statics.
// GSSAPI takes `gss_OID` (non-const) parameters for historical reasons but
// never writes through OIDs passed as inputs (RFC 2744 section 3.6), so
// sharing them between threads is sound.
unsafe impl Sync for StaticOid {}

impl StaticOid {
    pub(super) fn as_ptr(&'static self) -> gss_OID {
        &self.0 as *const gss_OID_desc as gss_OID
    }
}

macro_rules! static_oid {
    ($name:ident, $bytes:expr) => {
        pub(super) static $name: StaticOid = {
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
// The library
// ---------------------------------------------------------------------------

/// The loaded GSSAPI library and the entry points the gssapi module uses.
pub struct Gssapi {
    pub(super) import_name: FnImportName,
    pub(super) release_name: FnReleaseName,
    pub(super) display_name: FnDisplayName,
    pub(super) init_sec_context: FnInitSecContext,
    pub(super) delete_sec_context: FnDeleteSecContext,
    pub(super) release_buffer: FnReleaseBuffer,
    pub(super) display_status: FnDisplayStatus,
    pub(super) acquire_cred_from: FnAcquireCredFrom,
    pub(super) release_cred: FnReleaseCred,
    pub(super) inquire_cred: FnInquireCred,
    // Declared last so it is dropped last; the function pointers above are
    // only valid while this is loaded, and they never leave the gssapi module.
    _lib: Library,
}

impl fmt::Debug for Gssapi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gssapi").finish_non_exhaustive()
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
}

// ---------------------------------------------------------------------------
// Guards: each releases its GSSAPI object on drop, on every path.
// ---------------------------------------------------------------------------

/// A guard owning one GSSAPI handle: null until a call fills `handle`, released
/// on drop by `$release`, the library's call for that kind of object, which resets
/// the handle to null (so it runs exactly once).
macro_rules! handle_guard {
    ($(#[$doc:meta])* $guard:ident($handle:ty), $release:ident $(, $extra:expr)?) => {
        $(#[$doc])*
        pub(super) struct $guard<'a> {
            gss: &'a Gssapi,
            pub(super) handle: $handle,
        }

        impl<'a> $guard<'a> {
            /// An empty handle, for a call to fill.
            pub(super) fn new(gss: &'a Gssapi) -> $guard<'a> {
                $guard {
                    gss,
                    handle: ptr::null_mut(),
                }
            }
        }

        impl Drop for $guard<'_> {
            fn drop(&mut self) {
                if !self.handle.is_null() {
                    let mut minor = 0;
                    // SAFETY: the handle came from the calls named on the guard's
                    // declaration and is released exactly once (the call resets it
                    // to null).
                    unsafe { (self.gss.$release)(&mut minor, &mut self.handle $(, $extra)?) };
                }
            }
        }
    };
}

handle_guard!(
    /// A name from gss_import_name or gss_inquire_cred.
    Name(gss_name_t),
    release_name
);
handle_guard!(
    /// A credential from gss_acquire_cred_from.
    Cred(gss_cred_id_t),
    release_cred
);
handle_guard!(
    /// A security context from gss_init_sec_context (which may set it even on
    /// failure). On release, a null output token (GSS_C_NO_BUFFER) asks for no
    /// context-deletion token.
    Context(gss_ctx_id_t),
    delete_sec_context,
    ptr::null_mut()
);

/// A buffer the library fills (a token, a name's or a status's text).
pub(super) struct Buffer<'a> {
    gss: &'a Gssapi,
    pub(super) desc: gss_buffer_desc,
}

impl<'a> Buffer<'a> {
    pub(super) fn new(gss: &'a Gssapi) -> Buffer<'a> {
        Buffer {
            gss,
            desc: gss_buffer_desc {
                length: 0,
                value: ptr::null_mut(),
            },
        }
    }

    pub(super) fn to_vec(&self) -> Vec<u8> {
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
    fn oids() {
        assert_eq!(SPNEGO_MECH.0.length, 6);
        assert_eq!(NT_HOSTBASED_SERVICE.0.length, 10);
        assert_eq!(NT_KRB5_PRINCIPAL.0.length, 10);
    }
}
