//! The one place that turns what was typed (`cli`) into what the program runs with,
//! with every check that needs no I/O. Nothing deeper looks at raw flags.

pub mod profile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{GetArgs, InspectArgs};
use crate::clock::{self, parse_duration};
use crate::error::{Error, Result};
use crate::http::TrustOptions;
use crate::output::target::{self, OutputSpec, Target};
use crate::output::{condor, discovery};
use crate::source::oauth::exchange::{self, Ci, ExchangeOptions, Subject};
use crate::source::oauth::ClientAuth;
use crate::source::vault::VaultOptions;
use crate::source::{self, Source};

/// The Vault options typed (`vault::VaultOptions`).
fn vault_options(a: &GetArgs) -> Result<VaultOptions> {
    let dur = |name: &str, v: &Option<String>| -> Result<Option<Duration>> {
        v.as_deref().map(|v| duration_opt(name, v)).transpose()
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    Ok(VaultOptions {
        server: nonempty(&a.vault.vault_server),
        issuer_name: nonempty(&a.vault.issuer_name),
        role: nonempty(&a.vault.role),
        credkey: nonempty(&a.vault.credkey),
        keytab: a.vault.keytab.clone().filter(|p| !p.as_os_str().is_empty()),
        principal: nonempty(&a.vault.principal),
        token_file: a.vault.vault_token_file.clone(),
        token_minttl: dur("vault-token-minttl", &a.vault.vault_token_minttl)?,
        token_ttl: dur("vault-token-ttl", &a.vault.vault_token_ttl)?,
        kerberos_path: nonempty(&a.vault.kerberos_path),
        secret_path: nonempty(&a.vault.secret_path),
        credential: a.credential.clone(),
    })
}

#[derive(Debug, Clone)]
pub struct GetConfig {
    /// The token files from `-o` (or a profile's `outfile`/`outputs`); empty: the WLCG
    /// discovery default (`output::targets`, which never reads the credential).
    pub outputs: Vec<OutputSpec>,
    /// The first token file: the first `-o`, else the WLCG discovery default.
    pub outfile: PathBuf,
    /// `--minsecs` as given; `None`: the default rule, `token::default_minsecs`.
    pub minsecs: Option<i64>,
    /// Seconds added to the margin (`--condor=credd`: SEC_CREDENTIAL_REFRESH); 0 here.
    pub minsecs_extra: i64,
    /// Where the token comes from, and what is asked for.
    pub source: source::Settings,
    pub trust: TrustOptions,
    pub timeout: Duration,
    pub deadline: Duration,
    /// The profile this configuration comes from, for messages and hooks.
    pub profile: Option<String>,
    pub deploy_hook: Option<String>,
    pub hook_timeout: Duration,
    pub random_delay: Duration,
    /// `--condor`: what to hand HTCondor after a successful run.
    pub condor: Option<condor::Mode>,
    /// Scopes that must be granted, or the run fails with exit 77.
    pub require_scope: Vec<String>,
}

impl GetConfig {
    /// The long-lived secret this configuration reads (shown by `status`); the token
    /// file when there is none (exec).
    pub fn credential_path(&self) -> &std::path::Path {
        match &self.source.kind {
            Source::File(p) => p,
            Source::Client {
                secret_file: Some(s),
                ..
            } => s,
            Source::Client {
                secret_file: None, ..
            } => self
                .source
                .private_key_file
                .as_deref()
                .unwrap_or(&self.outfile),
            Source::Exec(_) => &self.outfile,
            Source::Vault(v) => v
                .credential
                .as_deref()
                .or(v.keytab.as_deref())
                .unwrap_or(&self.outfile),
        }
    }

    /// The token files' paths: `-o` (or a profile's), else the WLCG default.
    pub fn token_files(&self) -> Vec<PathBuf> {
        if self.outputs.is_empty() {
            vec![self.outfile.clone()]
        } else {
            self.outputs.iter().map(|o| o.path.clone()).collect()
        }
    }

    /// The token files of this run, resolved (`target::targets`).
    pub fn targets(&self) -> Result<Vec<Target>> {
        target::targets(&self.outputs, &self.outfile)
    }

    /// The credential file whose rewrite means a rotated refresh token.
    pub fn rotating_credential(&self) -> Option<&std::path::Path> {
        match &self.source.kind {
            Source::File(p) => Some(p),
            _ => None,
        }
    }
}

/// `--capath`, else `$X509_CERT_DIR`, else `/etc/grid-security/certificates` when it
/// exists; plus `--cafile`.
pub fn trust_options(capath: &Option<PathBuf>, cafile: &Option<PathBuf>) -> TrustOptions {
    TrustOptions {
        capath: capath_or_default(capath),
        cafile: cafile.clone(),
    }
}

/// The subject token source named by `--ci`, `--subject-token-file` or
/// `--subject-token-env`.
fn subject_from_args(a: &GetArgs) -> Result<Option<Subject>> {
    let plain = match (&a.subject_token_file, &a.subject_token_env) {
        (Some(f), _) => Some(Subject::File(f.clone())),
        (None, Some(e)) => Some(Subject::Env(e.clone())),
        (None, None) => None,
    };
    let ci = match a.ci.as_deref() {
        None => return Ok(plain),
        Some("github") => Ci::GitHub,
        Some("gitlab") => Ci::GitLab,
        _ => exchange::detect_ci().ok_or_else(|| {
            Error::config(
                "--ci auto: this is neither GitHub Actions (GITHUB_ACTIONS=true) nor GitLab CI (GITLAB_CI=true); name the system with --ci",
            )
        })?,
    };
    match ci {
        Ci::GitHub if plain.is_some() => Err(Error::usage(
            "--ci github gets the subject token from GitHub: drop --subject-token-file/--subject-token-env",
        )),
        Ci::GitHub => Ok(Some(Subject::GitHub)),
        Ci::GitLab => match plain {
            Some(s @ Subject::Env(_)) => Ok(Some(s)),
            _ => Err(Error::usage(
                "--ci gitlab needs --subject-token-env NAME: the job's id_tokens: variable",
            )),
        },
    }
}

fn duration_opt(name: &str, v: &str) -> Result<Duration> {
    parse_duration(v).map_err(|e| Error::usage(format!("--{name}: {e}")))
}

fn words(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// `--capath`, else `$X509_CERT_DIR`, else the grid CA directory when it exists.
fn capath_or_default(explicit: &Option<PathBuf>) -> Option<PathBuf> {
    explicit.clone().or_else(|| {
        std::env::var_os("X509_CERT_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/etc/grid-security/certificates")))
            .filter(|p| p.is_dir())
    })
}

/// What `inspect --verify` checks and how it reaches the issuer.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub expect: crate::verify::Expect,
    pub trust: TrustOptions,
    pub timeout: Duration,
}

impl VerifyConfig {
    /// `None` without --verify; the options that only --verify uses are refused then.
    pub fn from_args(a: &InspectArgs) -> Result<Option<VerifyConfig>> {
        if !a.verify {
            let stray = [
                ("--issuer", a.issuer.is_some()),
                ("--audience", !a.audience.is_empty()),
                ("--require-scope", !a.require_scope.is_empty()),
            ];
            if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(Error::usage(format!(
                    "{name} is checked only with --verify: add --verify"
                )));
            }
            return Ok(None);
        }
        let timeout = duration_opt("timeout", &a.timeout)?;
        if timeout.is_zero() {
            return Err(Error::usage("--timeout must be positive"));
        }
        Ok(Some(VerifyConfig {
            expect: crate::verify::Expect {
                issuer: a.issuer.clone(),
                audience: words(&a.audience),
                scopes: words(&a.require_scope),
            },
            trust: TrustOptions {
                capath: capath_or_default(&a.capath),
                cafile: a.cafile.clone(),
            },
            timeout,
        }))
    }
}

impl GetConfig {
    pub fn from_args(a: &GetArgs) -> Result<GetConfig> {
        let subject = subject_from_args(a)?;
        let vault = vault_options(a)?;
        let source = if vault.any() {
            if a.client_id.is_some() || a.client_secret_file.is_some() || a.issuer.is_some() {
                return Err(Error::usage(
                    "Vault options (--vault-server, ...) cannot be combined with --issuer, --client-id or --client-secret-file",
                ));
            }
            if vault.server.is_none() && vault.credential.is_none() {
                return Err(Error::usage(
                    "Vault options need --vault-server (or -c FILE with a \"vault\" section)",
                ));
            }
            // What can be checked without reading the credential file, checked now,
            // so that a fresh run (which reads nothing) also reports it.
            if vault.credential.is_none() {
                if let Some(server) = &vault.server {
                    crate::source::vault::normalize_server(server)?;
                }
                let minttl = vault
                    .token_minttl
                    .unwrap_or(crate::source::vault::DEFAULT_TOKEN_MINTTL);
                let ttl = vault
                    .token_ttl
                    .unwrap_or(crate::source::vault::DEFAULT_TOKEN_TTL);
                if minttl >= ttl {
                    return Err(Error::usage(format!(
                        "--vault-token-minttl ({}s) must be less than --vault-token-ttl ({}s)",
                        minttl.as_secs(),
                        ttl.as_secs()
                    )));
                }
            }
            Source::Vault(vault)
        } else {
            Self::oauth_source(a, subject.is_some())?
        };
        Self::finish(a, source, subject)
    }

    fn oauth_source(a: &GetArgs, exchange: bool) -> Result<Source> {
        let keyed = a.private_key_file.is_some();
        let source = match (&a.credential, &a.client_id, &a.client_secret_file) {
            (Some(c), None, None) => Source::File(c.clone()),
            (Some(_), _, _) => {
                return Err(Error::usage(
                    "--credential cannot be combined with --client-id or --client-secret-file: the credential file holds the client",
                ))
            }
            (None, Some(_), Some(_)) if keyed => {
                return Err(Error::usage(
                    "give --client-secret-file or --private-key-file, not both",
                ))
            }
            (None, Some(id), secret) => {
                if secret.is_none() && !keyed && !exchange {
                    return Err(Error::usage(
                        "--client-id needs --client-secret-file or --private-key-file for the client_credentials grant",
                    ));
                }
                if a.issuer.is_none() && a.token_endpoint.is_none() {
                    return Err(Error::usage("--client-id needs --issuer (or --token-endpoint)"));
                }
                Source::Client {
                    issuer: a.issuer.clone(),
                    client_id: id.clone(),
                    secret_file: secret.clone(),
                }
            }
            (None, None, _) => {
                return Err(Error::usage(
                    "no credential: give -c FILE (or ROBOT_TOKEN_CREDENTIAL), or --issuer, --client-id and --client-secret-file, or --vault-server and --keytab",
                ))
            }
        };
        if a.client_auth.as_deref() == Some("private_key_jwt")
            && !keyed
            && matches!(source, Source::Client { .. })
        {
            return Err(Error::usage(
                "--client-auth private_key_jwt needs --private-key-file",
            ));
        }
        if matches!(source, Source::File(_)) && a.issuer.is_some() {
            return Err(Error::usage(
                "--issuer cannot be combined with --credential: set \"issuer\" in the credential file",
            ));
        }
        Ok(source)
    }

    fn finish(a: &GetArgs, source: Source, subject: Option<Subject>) -> Result<GetConfig> {
        let minsecs = a
            .minsecs
            .as_deref()
            .map(|m| duration_opt("minsecs", m).map(clock::secs))
            .transpose()?;
        let timeout = duration_opt("timeout", &a.timeout)?;
        let deadline = duration_opt("deadline", &a.deadline)?;
        let hook_timeout = duration_opt("hook-timeout", &a.hook_timeout)?;
        let random_delay = duration_opt("random-delay", &a.random_delay)?;
        let deploy_hook = match a.deploy_hook.as_deref().map(str::trim) {
            Some("") => return Err(Error::usage("--deploy-hook is empty")),
            Some(_) => a.deploy_hook.clone(),
            None => None,
        };
        if timeout.is_zero() || deadline.is_zero() || hook_timeout.is_zero() {
            return Err(Error::usage(
                "--timeout, --deadline and --hook-timeout must be positive",
            ));
        }
        if a.outfile.iter().any(|s| s.is_empty()) {
            // Empty would otherwise quietly mean the default location.
            return Err(Error::usage(
                "-o (or $ROBOT_TOKEN_OUTFILE) is empty: name a file, or leave it out for WLCG discovery",
            ));
        }
        let outputs = a
            .outfile
            .iter()
            .map(|s| OutputSpec::parse(s).map_err(|e| Error::usage(format!("-o/--outfile {e}"))))
            .collect::<Result<Vec<_>>>()?;
        let outfile = outputs
            .first()
            .map(|o| o.path.clone())
            .unwrap_or_else(discovery::token_file);
        let mut files: Vec<&Path> = outputs.iter().map(|o| o.path.as_path()).collect();
        if files.is_empty() {
            files.push(&outfile);
        }
        let condor = condor_mode(a, &source, &files)?;
        Ok(GetConfig {
            outputs,
            outfile,
            minsecs,
            minsecs_extra: 0,
            source: source::Settings {
                kind: source,
                token_endpoint: a.token_endpoint.clone(),
                client_auth: a.client_auth.as_deref().and_then(ClientAuth::parse),
                scope: words(&a.scope),
                audience: words(&a.audience),
                private_key_file: a.private_key_file.clone(),
                kid: a.kid.clone(),
                exchange: ExchangeOptions {
                    subject,
                    subject_token_type: a.subject_token_type.clone(),
                    requested_token_type: a.requested_token_type.clone(),
                    ci_audience: a.ci_audience.clone(),
                },
            },
            trust: trust_options(&a.trust.capath, &a.trust.cafile),
            timeout,
            deadline,
            profile: None,
            deploy_hook,
            hook_timeout,
            random_delay,
            condor,
            require_scope: words(&a.require_scope),
        })
    }
}

/// `--condor[=MODE]`, `--condor-service`, `--condor-handle`.
fn condor_mode(a: &GetArgs, source: &Source, files: &[&Path]) -> Result<Option<condor::Mode>> {
    let Some(mode) = a.condor.as_deref() else {
        if a.condor_service.is_some() || a.condor_handle.is_some() {
            return Err(Error::usage(
                "--condor-service and --condor-handle need --condor=credd",
            ));
        }
        return Ok(None);
    };
    if let Some((outfile, dir)) = files
        .iter()
        .find_map(|f| condor::in_idtokens_dir(f).map(|d| (f, d)))
    {
        return Err(Error::usage(format!(
            "--condor: the token file {} is in {}, HTCondor's IDTOKENS directory, where a SciToken \
             breaks IDTOKENS authentication: choose another --outfile",
            outfile.display(),
            dir.display()
        )));
    }
    if mode != "credd" && (a.condor_service.is_some() || a.condor_handle.is_some()) {
        return Err(Error::usage(format!(
            "--condor-service and --condor-handle need --condor=credd, not --condor={mode}"
        )));
    }
    Ok(Some(match mode {
        "credd" => {
            let Some(service) = a.condor_service.clone() else {
                return Err(Error::usage(
                    "--condor=credd needs --condor-service NAME (the name jobs give in \
                     use_oauth_services; pick one no credmon claims)",
                ));
            };
            condor::check_name("--condor-service", &service).map_err(Error::usage)?;
            if let Some(h) = &a.condor_handle {
                condor::check_name("--condor-handle", h).map_err(Error::usage)?;
            }
            condor::Mode::Credd {
                service,
                handle: a.condor_handle.clone(),
            }
        }
        "vault-storer" => {
            if matches!(source, Source::Client { .. }) {
                return Err(Error::usage(
                    "--condor=vault-storer needs the Vault source (--vault-server with a keytab): \
                     HTCondor's Vault credmon gets its tokens from Vault, not from a client secret",
                ));
            }
            condor::Mode::VaultStorer
        }
        _ => condor::Mode::File,
    }))
}
