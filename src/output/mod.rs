//! Where a token goes once issued: the token files (`target`, with the WLCG default
//! location from `discovery`), written through the shared `crate::store` (atomic
//! replace, locks, trust), then handed to HTCondor (`condor`) and to a deploy hook
//! (`hook`); `state` records the run for `status`.
//! Outputs use only the shared modules: what they need from a source (a Kerberos
//! ticket, a Vault server name) is passed in as a value.

pub mod condor;
pub mod discovery;
pub mod hook;
pub mod state;
pub mod target;
