//! TLS trust: the system roots plus `--cafile` and `--capath`, checked up front
//! (`check_trust`, nothing read) and loaded only when an https URL is first used
//! (`load_roots`). Separate from the client because it is file handling (through
//! the safe-file layer), not networking.

use std::fs;
use std::path::{Path, PathBuf};

use ureq::tls::Certificate;

use crate::error::{Error, Result};

/// Extra trust on top of the system store.
#[derive(Clone, Debug, Default)]
pub struct TrustOptions {
    /// A hashed CA directory, as /etc/grid-security/certificates.
    pub capath: Option<PathBuf>,
    pub cafile: Option<PathBuf>,
}

/// Check that explicitly given CA locations are readable, without loading them.
pub fn check_trust(t: &TrustOptions) -> Result<()> {
    if let Some(f) = &t.cafile {
        // Opened, not read (that waits for the first https request): a FIFO or a
        // runaway file is refused before anything is sent, and never waited on.
        use crate::store::FileError;
        let (_, meta) = crate::store::open_regular(f).map_err(|e| match e {
            FileError::Io { err, .. } => Error::config(format!(
                "cannot read --cafile {}: {}",
                f.display(),
                crate::error::io_reason(&err)
            )),
            e => Error::config(format!("--cafile: {e}")),
        })?;
        if meta.len() > MAX_CA_FILE_LEN as u64 {
            return Err(Error::config(format!(
                "--cafile: {}",
                FileError::TooLarge {
                    path: f.clone(),
                    max: MAX_CA_FILE_LEN
                }
            )));
        }
    }
    if let Some(d) = &t.capath {
        fs::read_dir(d).map_err(|e| {
            Error::config(format!(
                "cannot read --capath {}: {}",
                d.display(),
                crate::error::io_reason(&e)
            ))
        })?;
    }
    Ok(())
}

/// A CA file larger than this is not a CA file (Debian's whole bundle is ~220 KiB).
pub const MAX_CA_FILE_LEN: usize = 4 * 1024 * 1024;

fn pem_certs(
    path: &Path,
    out: &mut Vec<Certificate<'static>>,
) -> std::result::Result<usize, crate::store::FileError> {
    let opened = crate::store::open_regular(path)?;
    let data = crate::store::read_capped(path, opened, MAX_CA_FILE_LEN)?;
    let mut n = 0;
    for item in ureq::tls::parse_pem(&data).flatten() {
        if let ureq::tls::PemItem::Certificate(c) = item {
            out.push(c);
            n += 1;
        }
    }
    Ok(n)
}

/// The system roots plus `--cafile` and every certificate in `--capath`.
pub(super) fn load_roots(
    t: &TrustOptions,
) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let mut roots = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        roots.push(Certificate::from_der(c.as_ref()).to_owned());
    }
    let system = roots.len();
    if let Some(f) = &t.cafile {
        let n = pem_certs(f, &mut roots).map_err(|e| format!("--cafile: {e}"))?;
        if n == 0 {
            return Err(format!("--cafile {} holds no PEM certificate", f.display()));
        }
    }
    if let Some(d) = &t.capath {
        let entries =
            fs::read_dir(d).map_err(|e| format!("cannot read --capath {}: {e}", d.display()))?;
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // Hashed links (abcd1234.0) and plain .pem/.crt files; skip CRLs (.r0),
            // signing policies and namespaces that share the grid CA directory.
            let is_cert = name.ends_with(".pem")
                || name.ends_with(".crt")
                || name
                    .rsplit_once('.')
                    .is_some_and(|(h, n)| h.len() == 8 && n.chars().all(|c| c.is_ascii_digit()));
            if is_cert {
                let _ = pem_certs(&e.path(), &mut roots);
            }
        }
    }
    tracing::debug!(
        "trust store: {system} system roots, {} added",
        roots.len() - system
    );
    if roots.is_empty() {
        return Err("no trusted CA certificates found; use --cafile or --capath".into());
    }
    Ok(roots)
}
