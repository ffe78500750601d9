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
//!
//! Here: the run, the checks' record and the token-file, lock, HTCondor and hook
//! checks; `sources` holds the source's.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::clock::human_secs;
use crate::commands::renew::{self, Current};
use crate::config::GetConfig;
use crate::error::{Error, Exit, Result};
use crate::http::{self, Http};
use crate::output::{condor, hook};
use crate::source::{self, vault, Context, Source};
use crate::store::{self, FileError};
use crate::token;

mod sources;

use self::sources::source_checks;

/// Clock skew beyond this is worth a warning: token `exp`/`nbf` checks break.
pub(super) const MAX_SKEW_SECS: i64 = 60;

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
    let _ = writeln!(
        std::io::stderr(),
        "robot-token: error: dry run: {} of {} profiles would fail: {}",
        failed.len(),
        cfgs.len(),
        super::failed_list(&failed)
    );
    Exit::worst(failed.iter().map(|(_, e)| *e))
}

/// The outcome of the checks of one configuration.
pub(super) struct Checks {
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
    pub(super) fn check<T>(
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
pub(super) fn check(cfg: &GetConfig) -> Checks {
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
    let first = renew::first_file(cfg, &targets);
    let ctx = Context {
        minsecs: renew::wanted_minsecs(cfg.minsecs, &on_disk),
        minsecs_is_default: cfg.minsecs.is_none(),
        ..Context::new(&http, &lock_paths, &first, deadline)
    };

    // The source: what it reads, and the issuer or Vault it talks to.
    if source_ok {
        source_checks(cfg, &ctx, trusted, &mut c);
    }
    c.failed.extend(at_the_end);

    // After the renewal: the HTCondor hand-off and the deploy hook.
    if let Some(mode) = &cfg.condor {
        for (what, r) in condor::preflight(mode, &cfg.outfile, cfg.timeout, &|login| {
            renew::vault_storer(cfg, login)
        }) {
            c.check(&what, r, |d| d.clone());
        }
    }
    if let Some(cmd) = &cfg.deploy_hook {
        c.check("deploy hook", hook::resolves(cmd), |d| d.clone());
    }
    c
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

pub(super) fn describe_vault(s: &vault::Settings) -> String {
    format!(
        "{} issuer {} role {} credkey {}",
        s.server, s.issuer, s.role, s.credkey
    )
}

pub(super) fn describe_trust(t: &http::TrustOptions) -> String {
    let mut v = vec!["the system store".to_string()];
    if let Some(f) = &t.cafile {
        v.push(format!("--cafile {}", f.display()));
    }
    if let Some(d) = &t.capath {
        v.push(format!("--capath {}", d.display()));
    }
    v.join(" + ")
}
