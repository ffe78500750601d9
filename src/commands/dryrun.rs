//! `robot-token get --dry-run`: prove a crontab line before it runs. Everything a
//! renewal does, in its order, as checks, except redeeming a credential and replacing
//! a file: the token files (ownership, the directories a renewal writes in), the CA
//! options, the locks, the credential (readable, yours, mode, parsable, not revoked,
//! its directory), the client's secret or key, the issuer (discovery `GET`, the token
//! endpoint https or loopback, the TLS chain with `--cafile`/`--capath`, its clock),
//! Vault (reachable, the keytab and its principal, the cached Vault token; no login),
//! HTCondor (`--condor`: tools, version band, the credd answering a query) and the
//! deploy hook (its command resolves).
//!
//! Each check that fails is one line on stderr saying what to do; a passing check is a
//! line only with -v; success is one summary line on stdout. The exit code is the one
//! the renewal would exit with: that of the first failure it would meet (token files
//! that cannot be written while others can count after the source, as the renewal
//! reports them once it wrote the others, and before the hand-off and the hook).
//! Nothing is sent that could redeem, rotate or consume anything: discovery and
//! Vault's health and lookup-self are reads; no token request, no login. The renewal's
//! own pre-send checks (`store::prepare`, `Credential::prepare_rewrite`) run as they
//! are, their temp files removed uncommitted.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::clock::human_secs;
use crate::commands::renew::{self, Current};
use crate::config::GetConfig;
use crate::error::{Error, Exit, Result};
use crate::http::{self, Http, Retry};
use crate::output::condor;
use crate::output::hook;
use crate::source::credential::{self, Credential};
use crate::source::oauth::exchange;
use crate::source::vault;
use crate::source::vault::VaultOptions;
use crate::source::Source;
use crate::source::{self, Context};
use crate::store::{self, FileError};
use crate::token;

/// Clock skew beyond this is worth a warning: token `exp`/`nbf` checks break.
const MAX_SKEW_SECS: i64 = 60;

/// Check every configuration (one, a `--profile`, or `--all`) and print the summary.
pub fn run(cfgs: &[GetConfig]) -> Exit {
    let multi = cfgs.len() > 1;
    let mut passed = 0;
    let mut failed: Vec<(String, Exit)> = Vec::new();
    let mut summaries = Vec::new();
    let mut single = Exit::Ok;
    for cfg in cfgs {
        let c = check(cfg);
        passed += c.passed;
        single = c.exit();
        if single != Exit::Ok {
            failed.push((cfg.profile.clone().unwrap_or_default(), single));
        } else {
            summaries.push(c.summary(cfg));
        }
    }
    let quiet = !tracing::enabled!(tracing::Level::WARN);
    if failed.is_empty() {
        if !quiet {
            let line = if multi {
                format!(
                    "dry run: all {} profiles pass ({passed} checks); no token was requested and no file replaced",
                    cfgs.len()
                )
            } else {
                format!(
                    "dry run: all {passed} checks pass; {}; no token was requested and no file replaced",
                    summaries.join("; ")
                )
            };
            let _ = writeln!(std::io::stdout(), "{line}");
        }
        return Exit::Ok;
    }
    if !multi {
        let _ = writeln!(
            std::io::stderr(),
            "robot-token: error: dry run: the next renewal would fail with exit {}",
            single.code()
        );
        return single;
    }
    let list: Vec<String> = failed
        .iter()
        .map(|(n, e)| format!("{n} ({})", e.code()))
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "robot-token: error: dry run: {} of {} profiles would fail: {}",
        failed.len(),
        cfgs.len(),
        list.join(", ")
    );
    failed
        .iter()
        .map(|(_, e)| *e)
        .max_by_key(|e| e.severity())
        .unwrap_or(Exit::Ok)
}

/// The outcome of the checks of one configuration.
struct Checks {
    profile: Option<String>,
    passed: usize,
    /// In the order the renewal would meet them: the first decides the exit code.
    failed: Vec<Error>,
    /// What the next run would do, for the summary.
    plan: Vec<String>,
}

impl Checks {
    fn prefix(&self) -> String {
        self.profile
            .as_deref()
            .map(|p| format!("profile {p}: "))
            .unwrap_or_default()
    }

    fn pass(&mut self, what: &str, detail: &str) {
        self.passed += 1;
        tracing::info!("{}dry run: ok: {what}: {detail}", self.prefix());
    }

    fn fail(&mut self, what: &str, e: Error) {
        self.report(what, &e);
        self.failed.push(e);
    }

    fn report(&self, what: &str, e: &Error) {
        // Not eprintln!: a closed stderr must not panic.
        let _ = writeln!(
            std::io::stderr(),
            "robot-token: error: {}dry run: {what}: {}",
            self.prefix(),
            e.message()
        );
    }

    fn warn(&self, what: &str, m: &str) {
        tracing::warn!("{}dry run: {what}: {m}", self.prefix());
    }

    /// Record a check; `Some` with its value when it passed.
    fn check<T>(
        &mut self,
        what: &str,
        r: Result<T>,
        detail: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match r {
            Ok(v) => {
                let d = detail(&v);
                self.pass(what, &d);
                Some(v)
            }
            Err(e) => {
                self.fail(what, e);
                None
            }
        }
    }

    fn exit(&self) -> Exit {
        self.failed.first().map(Error::exit).unwrap_or(Exit::Ok)
    }

    fn summary(&self, cfg: &GetConfig) -> String {
        let name = cfg
            .profile
            .as_deref()
            .map(|p| format!("profile {p}: "))
            .unwrap_or_default();
        format!("{name}{}", self.plan.join(", "))
    }
}

/// Run the checks of one configuration, printing each failure.
fn check(cfg: &GetConfig) -> Checks {
    let mut c = Checks {
        profile: cfg.profile.clone(),
        passed: 0,
        failed: Vec::new(),
        plan: Vec::new(),
    };
    c.pass("configuration", &describe_source(cfg));

    // Token files: as the renewal looks at them first.
    let Some(targets) = c.check("token files", cfg.targets(), |t| {
        format!("{} token file(s)", t.len())
    }) else {
        return c;
    };
    let mut unreadable = Vec::new();
    let mut fresh_for = None::<(i64, i64)>;
    let mut due = Vec::new();
    let mut on_disk = Vec::new();
    for t in &targets {
        let what = format!("token file {}", t.path.display());
        match renew::current_by(&t.path, t.other_owner()) {
            Ok(cur) => {
                let (state, left) = describe_current(&cur, renew::Margin::of(cfg));
                if let Current::Expires(tm) = &cur {
                    on_disk.push(*tm);
                }
                match left {
                    Some(l) => fresh_for = Some(fresh_for.map_or(l, |f| f.min(l))),
                    None => due.push(t.path.display().to_string()),
                }
                c.pass(&what, &state);
            }
            Err(e) => {
                c.report(&what, &e);
                unreadable.push((t.path.clone(), e));
            }
        }
    }
    let all_unreadable = unreadable.len() == targets.len();
    let unreadable_paths: Vec<PathBuf> = unreadable.iter().map(|(p, _)| p.clone()).collect();
    if all_unreadable {
        // None usable: the renewal stops here, before anything else.
        c.failed.extend(renew::combine(unreadable, targets.len()));
        unreadable = Vec::new();
    }
    c.plan.push(match (due.is_empty(), fresh_for) {
        (false, _) => format!("the next run renews {}", due.join(", ")),
        (true, Some((left, margin))) => format!(
            "the token is fresh for {}, so runs do nothing until it has less than {} left",
            human_secs(left),
            human_secs(margin)
        ),
        (true, None) => "no token file is usable".into(),
    });

    // A credential file that does not exist: the renewal stops here, creating nothing.
    let mut source_ok = true;
    if let Source::File(path) = &cfg.source.kind {
        source_ok = c
            .check(
                &format!("credential {}", path.display()),
                source::precheck(&cfg.source),
                |_| "exists".into(),
            )
            .is_some();
    }

    // What the renewal checks before its first request.
    let trusted = c
        .check("CA options", http::check_trust(&cfg.trust), |_| {
            describe_trust(&cfg.trust)
        })
        .is_some();
    let deadline = crate::clock::from_now(cfg.deadline);
    let mut lock_paths = Vec::new();
    let mut unwritable = Vec::new();
    for t in targets
        .iter()
        .filter(|t| !unreadable_paths.contains(&t.path))
    {
        let what = format!("token file {}", t.path.display());
        let p = match store::lock_path(&t.path) {
            Ok(p) => p,
            Err(e) => {
                let e = renew::token_file_error(e);
                c.report(&what, &e);
                unwritable.push((t.path.clone(), e));
                continue;
            }
        };
        // Only a try, and only on a lock file that exists (a dry run creates none): a
        // renewal would wait for it, up to --deadline.
        if p.exists()
            && matches!(
                store::lock(&p, Instant::now()),
                Err(FileError::LockTimeout(_))
            )
        {
            c.warn(
                &what,
                "another robot-token run holds its lock now; the next run waits for it",
            );
        }
        lock_paths.push(p);
        // The renewal's own check before it sends anything: the replacement prepared
        // (directory, owner, trust, temp file, space), here dropped uncommitted.
        match store::prepare(&t.path, renew::TOKEN_RESERVE, t.write_mode()) {
            Ok(prepared) => {
                drop(prepared);
                c.pass(
                    &what,
                    "its directory takes the replacement (temp file created, space reserved, removed)",
                );
            }
            Err(e) => {
                let e = renew::token_file_error(e);
                c.report(&what, &e);
                unwritable.push((t.path.clone(), e));
            }
        }
    }
    let none_writable = unreadable_paths.len() + unwritable.len() == targets.len();
    unreadable.extend(unwritable);
    let mut at_the_end = None;
    if let Some(e) = renew::combine(unreadable, targets.len()) {
        if none_writable {
            // The renewal stops before sending anything.
            c.failed.push(e);
        } else {
            // It renews the others, and fails with these once they are written,
            // before any hand-off or hook.
            at_the_end = Some(e);
        }
    }
    lock_paths.sort();
    lock_paths.dedup();
    let http = Http::new(cfg.trust.clone(), cfg.timeout, deadline);
    let first = targets
        .first()
        .map(|t| t.path.clone())
        .unwrap_or_else(|| cfg.outfile.clone());
    let ctx = Context {
        http: &http,
        token_locks: &lock_paths,
        outfile: &first,
        deadline,
        minsecs: renew::wanted_minsecs(cfg.minsecs, &on_disk),
        minsecs_is_default: cfg.minsecs.is_none(),
    };

    // The source: what it reads, and the issuer or Vault it talks to.
    if source_ok {
        source_checks(cfg, &ctx, trusted, &mut c);
    }
    c.failed.extend(at_the_end);

    // After the renewal: the HTCondor hand-off and the deploy hook.
    if let Some(mode) = &cfg.condor {
        for (what, r) in condor::preflight(mode, &cfg.outfile, cfg.timeout, &|login| {
            crate::commands::get::vault_storer(cfg, login)
        }) {
            c.check(&what, r, |d| d.clone());
        }
    }
    if let Some(cmd) = &cfg.deploy_hook {
        c.check("deploy hook", hook::resolves(cmd), |d| d.clone());
    }
    c
}

/// A credential file is readable, safe and not retired: its real path and bytes.
fn credential_file_checks(
    path: &std::path::Path,
    c: &mut Checks,
) -> Option<(std::path::PathBuf, zeroize::Zeroizing<Vec<u8>>)> {
    let what = format!("credential {}", path.display());
    let (real, data) = c.check(&what, credential::read_file(path), |(real, _)| {
        format!(
            "{} is readable, yours, mode 0600 or stricter",
            real.display()
        )
    })?;
    c.check(&what, credential::refuse_revoked(&data, &real), |_| {
        "not revoked".into()
    })?;
    Some((real, data))
}

/// The credential (or client, or Vault) checks.
fn source_checks(cfg: &GetConfig, ctx: &Context, online: bool, c: &mut Checks) -> Option<()> {
    match &cfg.source.kind {
        Source::File(path) => {
            let what = format!("credential {}", path.display());
            let (real, data) = credential_file_checks(path, c)?;
            let section = c.check(&what, vault::section_of(&data, &real), |_| {
                "valid JSON, version 1".into()
            })?;
            if let Some(opts) = section {
                let s = c.check(
                    "Vault settings",
                    vault::Settings::from_options(&VaultOptions::default(), Some(&opts)),
                    describe_vault,
                )?;
                vault_checks(&s, ctx, online, c);
                return Some(());
            }
            let cred = c.check(&what, Credential::parse(&data, &real), |cred| {
                format!("client {}", cred.client_id)
            })?;
            if let Some(exec) = &cred.exec {
                exec_check(exec, c);
                return Some(());
            }
            oauth_checks(cfg, Some(cred), ctx, online, c)
        }
        Source::Client { .. } => oauth_checks(cfg, None, ctx, online, c),
        Source::Exec(exec) => {
            exec_check(exec, c);
            Some(())
        }
        Source::Vault(opts) => {
            if let Some(path) = &opts.credential {
                credential_file_checks(path, c)?;
            }
            let s = c.check(
                "Vault settings",
                vault::Settings::resolve(&cfg.source.kind).and_then(|s| {
                    s.ok_or_else(|| Error::usage("no Vault settings: give --vault-server"))
                }),
                describe_vault,
            )?;
            vault_checks(&s, ctx, online, c);
            Some(())
        }
    }
}

fn vault_checks(s: &vault::Settings, ctx: &Context, online: bool, c: &mut Checks) {
    if !online {
        return;
    }
    let (checks, date) = vault::preflight(s, ctx);
    for (what, r) in checks {
        c.check(&what, r, |d| d.clone());
    }
    clock(&format!("Vault {}", s.server), date.as_deref(), c);
    c.plan.push(format!("reads the token from {}", s.server));
}

fn exec_check(exec: &crate::source::exec::ExecSettings, c: &mut Checks) {
    let program = exec.program();
    let path = exec
        .env
        .get("PATH")
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let found = if program.contains('/') {
        let p = PathBuf::from(program);
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&p)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .then_some(p)
    } else {
        condor::Tools {
            path,
            timeout: std::time::Duration::from_secs(1),
        }
        .find(program)
    };
    let r = found.ok_or_else(|| {
        Error::config(format!(
            "cannot start the exec command {program:?}: not found or not executable; check \
             \"command\" (an absolute path is best)"
        ))
    });
    c.check("exec command", r, |p| {
        format!("{} is executable (it is not run)", p.display())
    });
    c.plan.push(format!("runs {program}"));
}

/// The OAuth2 checks: the client (secret or key), the token endpoint (discovery, https
/// or loopback, TLS), the issuer's clock, the subject token of an exchange.
fn oauth_checks(
    cfg: &GetConfig,
    cred: Option<Credential>,
    ctx: &Context,
    online: bool,
    c: &mut Checks,
) -> Option<()> {
    // The renewal prepares the credential's rewrite before it sends its refresh token.
    let rewrite = cred.clone();
    let p = c.check("client", source::preview(&cfg.source, cred), |p| {
        format!("{} authenticates by {}", p.client_id, p.client_auth)
    })?;
    let rewrite = rewrite.filter(|_| p.grant == "refresh_token");
    if let Some(subject) = &p.subject {
        c.check("subject token", exchange::check_available(subject), |d| {
            d.clone()
        });
    }
    if !online {
        rewrite_check(rewrite.as_ref(), c);
        return Some(());
    }
    let http = ctx.http;
    let (endpoint, date, discovery) = match (&p.token_endpoint, &p.issuer) {
        (Some(ep), _) => (
            c.check(
                "token endpoint",
                http::check_url(ep, "token endpoint").map(|_| ep.clone()),
                |ep| format!("{ep} (given; no discovery)"),
            ),
            None,
            None,
        ),
        (None, Some(issuer)) => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            match c.check(
                &format!("discovery {url}"),
                crate::issuer::discover_with_date(http, issuer),
                |_| "fetched".into(),
            ) {
                Some((meta, date)) => {
                    let ep = meta.token_endpoint.clone().ok_or_else(|| {
                        Error::config(format!(
                            "the discovery document of {issuer} names no token_endpoint: set \
                             token_endpoint in the credential file"
                        ))
                    });
                    let ep = ep.and_then(|ep| {
                        http::check_url(&ep, "token endpoint from discovery").map(|_| ep)
                    });
                    (
                        c.check("token endpoint", ep, |ep| {
                            format!("{ep} (https, or http to a loopback address)")
                        }),
                        date,
                        Some(url),
                    )
                }
                None => (None, None, None),
            }
        }
        (None, None) => {
            c.fail(
                "token endpoint",
                Error::config("no issuer and no token endpoint configured"),
            );
            (None, None, None)
        }
    };
    rewrite_check(rewrite.as_ref(), c);
    let Some(endpoint) = endpoint else {
        return Some(());
    };
    // The TLS chain: proven by the discovery GET when the token endpoint is on the same
    // origin; otherwise a GET to the token endpoint (not a token request) proves it.
    let same_origin = discovery
        .as_deref()
        .is_some_and(|d| origin(d) == origin(&endpoint));
    if !same_origin {
        let r = http
            .send(&endpoint, &[], None, Retry::Idempotent)
            .map(|r| r.date)
            .map_err(|f| f.into_error("cannot reach the token endpoint", &endpoint));
        if let Some(d) = c.check("token endpoint reachable", r, |_| {
            format!("{} answers (a GET, not a token request)", origin(&endpoint))
        }) {
            clock(&origin(&endpoint), d.as_deref(), c);
        }
    }
    if endpoint.starts_with("https://") {
        c.pass(
            "TLS",
            &format!(
                "the certificate of {} chains to a trusted CA ({})",
                origin(&endpoint),
                describe_trust(&cfg.trust)
            ),
        );
    }
    if let Some(d) = &discovery {
        clock(&origin(d), date.as_deref(), c);
    }
    c.plan.push(format!(
        "with the {} grant at {endpoint} as client {}",
        p.grant, p.client_id
    ));
    Some(())
}

/// The renewal's own check before it sends a refresh token (issue #13): the
/// credential's rewrite prepared in its real directory, temp file and space
/// (`Credential::prepare_rewrite`), here dropped uncommitted.
fn rewrite_check(cred: Option<&Credential>, c: &mut Checks) {
    if let Some(cred) = cred {
        c.check(
            &format!("credential {}", cred.path.display()),
            cred.prepare_rewrite().map(drop),
            |_| "its directory takes the rewrite of a rotated refresh token (temp file created, space reserved, removed)".into(),
        );
    }
}

/// `scheme://host:port` of a URL, for comparing and naming servers.
fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_string(),
    }
}

/// Compare a server's `Date` header with this host's clock; warn beyond a minute.
fn clock(server: &str, date: Option<&str>, c: &mut Checks) {
    let Some(date) = date else { return };
    let parsed = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(date.trim());
    let Ok(theirs) = parsed else {
        return;
    };
    let skew = token::now() - theirs.as_second();
    if skew.abs() > MAX_SKEW_SECS {
        c.warn(
            "clock",
            &format!(
                "this host's clock is {} {} than {server}'s (Date: {date}): token exp and nbf \
                 checks fail with skewed clocks; fix the time (NTP: chronyc tracking, \
                 timedatectl)",
                human_secs(skew.abs()),
                if skew > 0 { "ahead" } else { "behind" }
            ),
        );
    } else {
        c.pass(
            "clock",
            &format!("within {} of {server}'s", human_secs(skew.abs().max(1))),
        );
    }
}

/// What a token file holds, and (time left, margin) when it is fresh.
fn describe_current(cur: &Current, m: renew::Margin) -> (String, Option<(i64, i64)>) {
    match cur {
        Current::Missing => ("missing: the next run renews it".into(), None),
        Current::Unusable(why) => (format!("unusable ({why}): the next run replaces it"), None),
        Current::Expires(t) => {
            let margin = m.secs(t);
            // The renewal's own decision (`renew::fresh`), not a copy of it.
            if let Some(left) = renew::fresh(cur, m) {
                return (
                    format!("fresh for {}", human_secs(left)),
                    Some((left, margin)),
                );
            }
            let left = token::until(t.exp, token::now());
            if left > 0 {
                (
                    format!(
                        "{} left, less than its margin of {}: the next run renews it",
                        human_secs(left),
                        human_secs(margin)
                    ),
                    None,
                )
            } else {
                (
                    format!(
                        "expired {} ago: the next run renews it",
                        human_secs(left.saturating_neg())
                    ),
                    None,
                )
            }
        }
    }
}

fn describe_source(cfg: &GetConfig) -> String {
    let what = match &cfg.source.kind {
        Source::File(p) => format!("credential file {}", p.display()),
        Source::Client { client_id, .. } => format!("client {client_id} from the options"),
        Source::Exec(e) => format!("exec command {}", e.program()),
        Source::Vault(v) => format!(
            "Vault {}",
            v.server.as_deref().unwrap_or("from the credential file")
        ),
    };
    match &cfg.profile {
        Some(p) => format!("profile {p}: {what}"),
        None => what,
    }
}

fn describe_vault(s: &vault::Settings) -> String {
    format!(
        "{} issuer {} role {} credkey {}",
        s.server, s.issuer, s.role, s.credkey
    )
}

fn describe_trust(t: &http::TrustOptions) -> String {
    let mut v = vec!["the system store".to_string()];
    if let Some(f) = &t.cafile {
        v.push(format!("--cafile {}", f.display()));
    }
    if let Some(d) = &t.capath {
        v.push(format!("--capath {}", d.display()));
    }
    v.join(" + ")
}
