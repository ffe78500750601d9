//! `get --dry-run`.
