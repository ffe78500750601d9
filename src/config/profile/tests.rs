use std::path::{Path, PathBuf};

use crate::error::Result;

use super::*;

fn parse(text: &str) -> Result<ConfigFile> {
    ConfigFile::parse(Path::new("c.toml"), text.to_string())
}

#[test]
fn errors_name_line_and_key() {
    let e = parse("[profile.a]\noutfile = \"/tmp/x\"\nbogus = 1\n").unwrap_err();
    assert_eq!(e.exit(), crate::error::Exit::Config);
    assert!(e.message().starts_with("c.toml:3: "), "{e}");
    assert!(e.message().contains("\"bogus\""), "{e}");
    let e = parse("[profile.a]\nscope = [{x = 1}]\n").unwrap_err();
    assert!(e.message().starts_with("c.toml:2: "), "{e}");
    let e = parse("[profile.a]\noutfile = \n").unwrap_err();
    assert!(e.message().starts_with("c.toml:2: invalid TOML"), "{e}");
    let e = parse("[profile.\"a b\"]\n").unwrap_err();
    assert!(e.message().contains("profile name"), "{e}");
    let e = parse("verbose = 1\n").unwrap_err();
    assert!(e.message().contains("unknown key \"verbose\""), "{e}");
}

#[test]
fn keys_become_the_same_options() {
    let c = parse(
        "[defaults]\nminsecs = 7200\n[profile.a]\noutfile = \"/tmp/a\"\ncredential = \"/c.json\"\nscope = [\"x\", \"y\"]\ndeploy-hook = \"-dash\"\n[profile.b]\noutfile = \"/tmp/b\"\ncredential = \"/c.json\"\nminsecs = \"1h\"\n",
    )
    .unwrap();
    let all: Vec<&Profile> = c.profiles.iter().collect();
    let cfgs = c.resolve_all(&all, None).unwrap();
    assert_eq!(cfgs[0].minsecs, Some(7200));
    assert_eq!(cfgs[0].source.scope, vec!["x", "y"]);
    assert_eq!(cfgs[0].deploy_hook.as_deref(), Some("-dash"));
    assert_eq!(cfgs[0].profile.as_deref(), Some("a"));
    assert_eq!(cfgs[1].minsecs, Some(3600));
}

#[test]
fn bad_values_name_their_key() {
    let c = parse("[profile.a]\ncredential = \"/c\"\n\nminsecs = \"soon\"\n").unwrap();
    let e = c.resolve_all(&[&c.profiles[0]], None).unwrap_err();
    assert!(
        e.message().starts_with("c.toml:4: profile a, key minsecs:"),
        "{e}"
    );
    let c = parse("[profile.a]\ncredential = \"/c\"\nclient_auth = \"magic\"\n").unwrap();
    let e = c.resolve_all(&[&c.profiles[0]], None).unwrap_err();
    assert!(
        e.message()
            .starts_with("c.toml:3: profile a, key client_auth:"),
        "{e}"
    );
    let c =
        parse("[defaults]\nminsecs = \"soon\"\n[profile.storage]\ncredential = \"/c\"\n").unwrap();
    let e = c.resolve_all(&[&c.profiles[0]], None).unwrap_err();
    assert!(
        e.message()
            .starts_with("c.toml:2: [defaults], key minsecs (used by profile storage): --minsecs:"),
        "{e}"
    );
    let c = parse("[profile.a]\noutfile = \"/tmp/x\"\n").unwrap();
    let e = c.resolve_all(&[&c.profiles[0]], None).unwrap_err();
    assert!(
        e.message()
            .starts_with("c.toml:1: profile a: no credential"),
        "{e}"
    );
}

#[test]
fn token_file_tables_are_the_option_syntax() {
    let c = parse(
        "[profile.a]\ncredential = \"/c\"\noutfile = [\"/tmp/one\", {path = \"/tmp/two\", mode = \"0640\"}]\n",
    )
    .unwrap();
    let cfgs = c.resolve_all(&[&c.profiles[0]], None).unwrap();
    let paths: Vec<_> = cfgs[0].outputs.iter().map(|o| o.path.clone()).collect();
    assert_eq!(
        paths,
        vec![PathBuf::from("/tmp/one"), PathBuf::from("/tmp/two")]
    );
    assert_eq!(cfgs[0].outputs[1].mode, Some(0o640));
    let c = parse(
        "[profile.a]\ncredential = \"/c\"\noutfile = [\"/tmp/x\"]\n[profile.b]\ncredential = \"/c\"\noutfile = [\"/tmp/y\", \"/tmp/x\"]\n",
    )
    .unwrap();
    let all: Vec<&Profile> = c.profiles.iter().collect();
    assert!(c.resolve_all(&all, None).is_err());
}

#[test]
fn token_file_table_keys_are_checked() {
    let e =
        parse("[profile.a]\ncredential = \"/c\"\noutputs = [{path = \"/tmp/x\", onwer = \"x\"}]\n")
            .unwrap_err();
    assert_eq!(e.exit(), crate::error::Exit::Config);
    assert!(
        e.message().starts_with(
            "c.toml:3: profile a: key outputs: unknown option \"onwer\": did you mean owner?"
        ),
        "{e}"
    );
    let c = parse("[profile.a]\ncredential = \"/c\"\noutfile = \"/tmp/x:ownr=nobody\"\n").unwrap();
    let e = c.resolve_all(&[&c.profiles[0]], None).unwrap_err();
    assert!(e.message().contains("did you mean owner?"), "{e}");
}

#[test]
fn same_token_file_twice_is_refused() {
    let c = parse(
        "[profile.a]\ncredential = \"/c\"\noutfile = \"/tmp/./t\"\n[profile.b]\ncredential = \"/d\"\noutfile = \"/tmp/t\"\n",
    )
    .unwrap();
    let all: Vec<&Profile> = c.profiles.iter().collect();
    let e = c.resolve_all(&all, None).unwrap_err();
    assert!(
        e.message()
            .starts_with("c.toml:4: profiles a (line 1) and b"),
        "{e}"
    );
}
