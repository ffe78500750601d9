//! `revoke`'s arguments: which robot, then the options of its `get` line, those
//! revoke does not use hidden from its help.

use clap::Args;

use super::get::GetArgs;

pub(super) const REVOKE_HELP: &str = "Give it the same options as the robot's `get` line (or its --profile). \
OAuth: the refresh token is revoked at the issuer's revocation_endpoint (RFC 7009) with the client's \
authentication; then the token files and robot-token's own files (each file's lock and its record) are removed, and the \
credential file is kept (it may hold a client secret) without its refresh_token and with \"revoked_at\": \
`get` refuses it from then on. Vault: the cached Vault token is revoked (auth/token/revoke-self); with \
--force the refresh token stored in Vault is deleted first, as `htdestroytoken -f` does. A robot without a \
refresh token (client_credentials) has nothing to revoke at the issuer: only its files are removed. \
A second revoke does nothing and exits 0.\n\n\
Exit codes: 0 ok, 64 usage, 65 bad data, 73 cannot write, 75 temporary failure (nothing changed; run \
it again), 77 the issuer or Vault refused (local files kept), 78 configuration.";

/// The `get` options that `revoke` accepts (so that a crontab line can be reused)
/// but does not use: hidden from its help.
const UNUSED_BY_REVOKE: [&str; 18] = [
    "minsecs",
    "subject_token_file",
    "subject_token_env",
    "subject_token_type",
    "requested_token_type",
    "ci",
    "ci_audience",
    "require_scope",
    "scope",
    "audience",
    "deploy_hook",
    "hook_timeout",
    "random_delay",
    "vault_token_minttl",
    "vault_token_ttl",
    "condor",
    "condor_service",
    "condor_handle",
];

fn hide_unused_by_revoke(a: clap::Arg) -> clap::Arg {
    if UNUSED_BY_REVOKE.contains(&a.get_id().as_str()) {
        a.hide(true)
    } else {
        a
    }
}

// `revoke`: which robot, then the options of its `get` line. (No doc comment: it
// would replace the subcommand's about text when the deferred arguments are built.)
#[derive(Debug, Args, Clone)]
#[command(
    // Not get's examples, which the flattened options would bring.
    after_long_help = REVOKE_HELP,
    // One pass over the arguments: a mut_arg per option re-inserts each one, which
    // costs every run (even a fresh `get`) a third of its instructions.
    mut_args(hide_unused_by_revoke)
)]
pub struct RevokeCmd {
    /// Revoke this profile of the configuration file.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Vault: also delete the refresh token stored in Vault (what `htdestroytoken -f`
    /// does); the robot then needs htgettoken's interactive OIDC flow to work again.
    #[arg(long)]
    pub force: bool,

    // The options of the robot's `get` line: those revoke does not use are hidden and
    // ignored, so that `get` can be replaced by `revoke` in a crontab line.
    #[command(flatten)]
    pub args: GetArgs,
}
