//! The layout's import rules (README, "Development"): which folder of `src/` may use
//! which, and no import cycle between folders. Read from the `crate::` and `super::`
//! paths of every source file, so a new `use` that breaks a rule turns this red.
//! `cargo test --test layout -- --nocapture` also prints the folder graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The roles, from the top folder of a module (a file directly in `src/` is shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// `lib.rs` and `main.rs`: the entry point runs the commands.
    Root,
    Commands,
    Cli,
    Config,
    Sources,
    Outputs,
    Shared,
}

fn group(module: &[String]) -> Group {
    match module.first().map(String::as_str) {
        None => Group::Root,
        Some("commands") => Group::Commands,
        Some("cli") => Group::Cli,
        Some("config") => Group::Config,
        Some("source") => Group::Sources,
        Some("output") => Group::Outputs,
        Some(_) => Group::Shared,
    }
}

/// May a module of `from` use `to`?
fn allowed(from: Group, to: Group) -> bool {
    use Group::*;
    from == to
        || to == Shared
        || match from {
            Root | Commands => true,
            // Turns what was typed into each part's settings.
            Config => matches!(to, Cli | Sources | Outputs),
            // What was typed (clap's definitions), the sources, the outputs and the
            // shared pieces (the safe-file layer `store` among them) stand on shared
            // pieces only: what one needs from another is passed in as a value.
            Cli | Sources | Outputs | Shared => false,
        }
}

struct Module {
    path: Vec<String>,
    file: PathBuf,
}

fn modules(src: &Path) -> Vec<Module> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let mut path: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if matches!(
                path.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                path.pop();
            }
            out.push(Module { path, file: p });
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// Source text without comments (line comments, doc comments), so that prose that
/// names a path does not count as a use of it.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") {
                ""
            } else if let Some(i) = l.find(" // ") {
                &l[..i]
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// Every path the code names from the crate root: `crate::a::b`, the top names of
/// `crate::{a, b::c}`, and `super::` paths resolved against `module`.
fn uses(module: &Module, code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let path_after = |rest: &str, base: Vec<String>| -> Vec<String> {
        let mut p = base;
        let mut rest = rest;
        while let Some(id) = ident_at(rest) {
            p.push(id.to_string());
            match rest[id.len()..].strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        p
    };
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with('$')
            || code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a use group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(path_after(item.trim(), Vec::new()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(path_after(item.trim(), Vec::new()));
        } else {
            out.push(path_after(rest, Vec::new()));
        }
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::")
            || code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let mut rest = &code[i..];
        if rest.starts_with("super::*;") {
            // An inline `mod tests` importing the file's own module.
            continue;
        }
        let mut base = module.path.clone();
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        out.push(path_after(rest, base));
    }
    // A child module declared here (`mod vault;`) and used by its bare name.
    for line in code.lines() {
        let decl = line.trim_start().trim_start_matches("pub ");
        let Some(child) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) else {
            continue;
        };
        let used = code.match_indices(&format!("{child}::")).any(|(i, _)| {
            !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
        });
        if used {
            let mut p = module.path.clone();
            p.push(child.to_string());
            out.push(p);
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The module a path names: its longest prefix that is a file of `src/`.
fn target<'m>(mods: &'m [Module], path: &[String]) -> Option<&'m Module> {
    (1..=path.len())
        .rev()
        .find_map(|n| mods.iter().find(|m| m.path == path[..n]))
}

/// A cycle in `edges`, if there is one (depth-first search).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn folders_follow_the_import_rules_and_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    assert!(mods.len() > 20, "read {} files under src/", mods.len());
    let mut broken = Vec::new();
    // File to file, for the cycle check; folder to folder, for the map it prints.
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &mods {
        let text = std::fs::read_to_string(&m.file).unwrap();
        for p in uses(m, &code(&text)) {
            let Some(t) = target(&mods, &p) else {
                continue; // A crate-root item (a macro, `crate::main`).
            };
            let (from, to) = (group(&m.path), group(&t.path));
            if !allowed(from, to) {
                broken.push(format!(
                    "{} ({from:?}) uses crate::{} ({to:?})",
                    m.file.strip_prefix(&src).unwrap().display(),
                    p.join("::")
                ));
            }
            let name = |m: &Module| m.file.strip_prefix(&src).unwrap().display().to_string();
            if t.file != m.file && from != Group::Root {
                files.entry(name(m)).or_default().insert(name(t));
            }
            if from != to && from != Group::Root {
                folders
                    .entry(format!("{from:?}"))
                    .or_default()
                    .insert(format!("{to:?}"));
            }
        }
    }
    for (from, to) in &folders {
        println!(
            "{from} -> {}",
            to.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    broken.sort();
    broken.dedup();
    assert!(
        broken.is_empty(),
        "{} uses break the layout's import rules (README, Development):\n{}",
        broken.len(),
        broken.join("\n")
    );
    if let Some(cycle) = find_cycle(&folders) {
        panic!("import cycle between roles: {}", cycle.join(" -> "));
    }
    // Between roles the rules above already forbid a cycle; within a role, files
    // of different folders (a source and the source interface) must not form one
    // either. Files of one folder may use each other both ways.
    let folder_of = |f: &str| Path::new(f).parent().map(Path::to_path_buf);
    let mut crossing = files.clone();
    while let Some(cycle) = find_cycle(&crossing) {
        let one_folder = cycle.iter().all(|f| folder_of(f) == folder_of(&cycle[0]));
        assert!(
            one_folder,
            "import cycle across folders: {}",
            cycle.join(" -> ")
        );
        // Within one folder: allowed; drop one edge of it and look again.
        crossing.get_mut(&cycle[0]).unwrap().remove(&cycle[1]);
    }
}

/// The checker itself: a use that breaks a rule is found, in every spelling.
#[test]
fn the_checker_sees_every_spelling_of_a_use() {
    let m = |p: &[&str]| Module {
        path: p.iter().map(|s| s.to_string()).collect(),
        file: PathBuf::new(),
    };
    let names = |m: &Module, code: &str| -> Vec<String> {
        uses(m, code).iter().map(|p| p.join("::")).collect()
    };
    let store = m(&["output", "store"]);
    assert_eq!(
        names(&store, "use crate::config::GetConfig;"),
        ["config::GetConfig"]
    );
    assert_eq!(
        names(&store, "use crate::{config::{A, B}, token};"),
        ["config", "token"]
    );
    assert_eq!(
        names(&store, "let x = crate::source::vault::f();"),
        ["source::vault::f"]
    );
    assert_eq!(
        names(&store, "use super::super::commands::renew;"),
        ["commands::renew"]
    );
    assert!(names(&store, &code("// see crate::config for why")).is_empty());
    assert!(names(&store, "mod tests {\n    use super::*;\n}").is_empty());
    assert_eq!(
        names(&m(&["source"]), "pub mod vault;\nfn f() { vault::login() }"),
        ["source::vault"]
    );
    assert!(!allowed(Group::Outputs, Group::Config));
    assert!(!allowed(Group::Sources, Group::Outputs));
    assert!(!allowed(Group::Shared, Group::Sources));
    assert!(allowed(Group::Config, Group::Sources));
    assert!(allowed(Group::Sources, Group::Shared));
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}
