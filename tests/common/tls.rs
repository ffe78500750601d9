//! A certificate authority made by the test (rcgen), for https issuers whose
//! certificates robot-token must be told to trust.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair, SanType,
};

pub struct TestCa {
    pub cert: Certificate,
    key: KeyPair,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "robot-token test CA");
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf for the names `dns` (and 127.0.0.1 when `ip`), valid from the first to
    /// the second of `years` (rcgen's default without), written as `dir/NAME.pem`
    /// and `dir/NAME.key`: returns their paths.
    pub fn leaf(
        &self,
        dir: &Path,
        name: &str,
        dns: &[&str],
        ip: bool,
        years: Option<(i32, i32)>,
    ) -> (PathBuf, PathBuf) {
        let mut p =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if ip {
            p.subject_alt_names
                .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
        if let Some((from, to)) = years {
            p.not_before = date_time_ymd(from, 1, 1);
            p.not_after = date_time_ymd(to, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let (cert_file, key_file) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}
