use super::credd::{classify_store_cred, strip_log_stamp, Failure};
use super::vault_storer::vaultserver_arg;
use super::*;

#[test]
fn versions() {
    let out = "$CondorVersion: 24.10.2 2024-10-01 BuildID: 123 PackageID: 24.10.2-1 $\n\
               $CondorPlatform: X86_64-Debian_13 $\n";
    assert_eq!(parse_version(out), Some((24, 10, 2)));
    assert_eq!(
        parse_version("$CondorVersion: 23.9.6 2026-07-12 PackageID: 23.9.6+dfsg-2.1+b10 $"),
        Some((23, 9, 6))
    );
    assert_eq!(parse_version("condor 24"), None);
    assert_eq!(parse_version("$CondorVersion: 24.x.1 $"), None);
    assert_eq!(plain_support((24, 10, 2)), Plain::Flag);
    assert_eq!(plain_support((25, 0, 0)), Plain::Flag);
    assert_eq!(plain_support((24, 10, 1)), Plain::Implicit);
    assert_eq!(plain_support((24, 7, 3)), Plain::Implicit);
    assert_eq!(plain_support((24, 7, 2)), Plain::Unsupported);
    assert_eq!(plain_support((23, 9, 6)), Plain::Unsupported);
    // Read in HTCondor's sources: -P came with HTCONDOR-3084, first tagged v24.10.2;
    // the credd's writing of an unclaimed service's token as .use with
    // HTCONDOR-2803, first tagged v24.7.3; the 24.0 LTS series has neither.
    assert_eq!(plain_support((24, 9, 2)), Plain::Implicit);
    assert_eq!(plain_support((24, 0, 23)), Plain::Unsupported);
    assert_eq!(plain_support((25, 0, 1)), Plain::Flag);
    assert_eq!(
        parse_version("$CondorVersion: 25.14.1 2026-10-16 PackageID: 25.14.1+dfsg-1 $"),
        Some((25, 14, 1))
    );
}

#[test]
fn early_renewal_adds_the_refresh_interval() {
    let exp = crate::token::now() + 3600;
    let e = EarlyRenewal {
        refresh: 30,
        minsecs: Some(60),
    };
    assert_eq!(e.minsecs(exp), 90);
    let off = EarlyRenewal {
        refresh: -1,
        minsecs: Some(60),
    };
    assert_eq!(off.minsecs(exp), 60);
    let huge = EarlyRenewal {
        refresh: i64::MAX,
        minsecs: Some(60),
    };
    assert_eq!(huge.minsecs(exp), i64::MAX);
    // Without --minsecs: half a 1-hour token's lifetime, plus the interval.
    let default = EarlyRenewal {
        refresh: 300,
        minsecs: None,
    };
    assert_eq!(default.minsecs(exp), 1800 + 300);
}

#[test]
fn log_stamps() {
    assert_eq!(
        strip_log_stamp("12/06/26 20:46:25 ERROR: SECMAN:2010:Received"),
        "ERROR: SECMAN:2010:Received"
    );
    assert_eq!(strip_log_stamp("Operation failed."), "Operation failed.");
    assert_eq!(strip_log_stamp("a b c"), "a b c");
}

#[test]
fn gettoken_opts() {
    let o = parse_gettoken_opts("--credkey=robot --role=prod --vaultserver=vault.ligo.org");
    assert_eq!(o.credkey.as_deref(), Some("robot"));
    assert_eq!(o.role.as_deref(), Some("prod"));
    assert_eq!(o.vaultserver.as_deref(), Some("vault.ligo.org"));
    let o = parse_gettoken_opts("-a vault.ligo.org -r prod --credkey robot --nooidc");
    assert_eq!(o.vaultserver.as_deref(), Some("vault.ligo.org"));
    assert_eq!(o.role.as_deref(), Some("prod"));
    assert_eq!(o.credkey.as_deref(), Some("robot"));
    let o = parse_gettoken_opts("-avault.example:8443");
    assert_eq!(o.vaultserver.as_deref(), Some("vault.example:8443"));
    assert_eq!(parse_gettoken_opts(""), GettokenOpts::default());
}

#[test]
fn vault_servers_compare_as_htgettoken_resolves_them() {
    let n = normalize_vault;
    assert_eq!(n("vault.ligo.org"), n("https://vault.ligo.org:8200/"));
    assert_eq!(n("Vault.LIGO.org:8200"), n("vault.ligo.org"));
    assert_ne!(n("vault.ligo.org:8443"), n("vault.ligo.org"));
    assert_eq!(
        vaultserver_arg("https://vault.ligo.org:8200"),
        "vault.ligo.org"
    );
    assert_eq!(vaultserver_arg("vault.example:8443"), "vault.example:8443");
}

#[test]
fn names() {
    assert!(check_name("--condor-service", "robot_svc-1.x").is_ok());
    assert!(check_name("--condor-service", "-P").is_err());
    assert!(check_name("--condor-service", "a/b").is_err());
    assert!(check_name("--condor-service", "").is_err());
    assert!(check_name("--condor-service", "a b").is_err());
}

#[test]
fn idtokens_dirs() {
    assert!(in_idtokens_dir(Path::new("/home/r/.condor/tokens.d/t")).is_some());
    assert!(in_idtokens_dir(Path::new("/etc/condor/tokens.d/t")).is_some());
    assert!(in_idtokens_dir(Path::new("/home/r/.condor/t")).is_none());
    assert!(in_idtokens_dir(Path::new("/tmp/tokens.d/t")).is_none());
}

#[test]
fn redaction() {
    let jwt = token::tests::make("{\"exp\":1}");
    let line = format!("got token {jwt}, vault token hvs.CAESIabcdefghijklmnopqrstu ok");
    let r = redact(&line);
    assert!(!r.contains(&jwt) && !r.contains("hvs.CAES"), "{r}");
    assert!(
        r.contains("got token [redacted], vault token [redacted] ok"),
        "{r}"
    );
    assert_eq!(redact("Operation failed."), "Operation failed.");
}

#[test]
fn store_cred_failures() {
    let ran = |code, out: &str, err: &str| Ran {
        code: Some(code),
        timed_out: false,
        timeout: Duration::from_secs(1),
        stdout: out.into(),
        stderr: err.into(),
    };
    assert!(matches!(
        classify_store_cred(&ran(
            1,
            "",
            "STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd"
        )),
        Failure::Unreachable(_)
    ));
    assert!(matches!(
        classify_store_cred(&ran(
            1,
            "",
            "ERROR: Unrecognized option - '-P'\n\nUsage: condor_store_cred"
        )),
        Failure::Config(_)
    ));
    assert_eq!(
        classify_store_cred(&ran(
            1,
            "Operation failed.\n    Make sure your ALLOW_WRITE setting includes this host.\n",
            ""
        )),
        Failure::Unknown
    );
    assert!(matches!(
        classify_store_cred(&ran(2, "", "")),
        Failure::Config(_)
    ));
    // HTCondor 25.14.1's `query-oauth -d` when the credd's policy denies the user
    // (seen on a real pool): it also says "Unable to contact local credd".
    let denied = "12/06/26 20:46:25 Can't open directory \"/etc/condor/passwords.d\" as PRIV_ROOT, errno: 13 (Permission denied)\n\
         12/06/26 20:46:25 SECMAN: FAILED: Received \"DENIED\" from server for user robot@localhost using method FS.\n\
         12/06/26 20:46:25 ERROR: SECMAN:2010:Received \"DENIED\" from server for user robot@localhost using method FS.\n\
         12/06/26 20:46:25 STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd\n";
    assert_eq!(
        classify_store_cred(&ran(1, "Operation failed.\n", denied)),
        Failure::Denied(
            "SECMAN: FAILED: Received \"DENIED\" from server for user robot@localhost using \
             method FS."
                .into()
        )
    );
    // ...and when the credd is down: the same noise, no denial.
    let down = "12/06/26 20:46:32 Can't open directory \"/etc/condor/passwords.d\" as PRIV_ROOT, errno: 13 (Permission denied)\n\
         12/06/26 20:46:32 Can't find address for credd localhost\n\
         12/06/26 20:46:32 STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd\n";
    assert_eq!(
        classify_store_cred(&ran(0, "Operation failed.\n", down)),
        Failure::Unreachable("Can't find address for credd localhost".into())
    );
}
