//! The layout of `src/` holds: every module sits on a floor, no import runs to a higher
//! floor, no two top-level modules import each other (directly or round about), and no
//! two files of one directory do. README's "How the code is laid out" names the floors.
//!
//! Imports are read from the source text: every `crate::`, `super::` and `self::` path
//! outside comments and outside the `#[cfg(test)] mod tests` block at a file's end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, lowest first: a module may import its own floor and those below it.
const FLOORS: &[&[&str]] = &[
    &["error", "rule", "clock"],
    &["credentials", "restrict"],
    &["client"],
    &["document"],
    &["policy"],
    &["rejection"],
    &["limits"],
    &["events"],
    &["store"],
    &["token", "signed"],
    &["layer"],
    &["admin", "console"],
];

/// A module's path below the crate root: `["layer", "check"]` for `src/layer/check.rs`.
type ModPath = Vec<String>;

struct Crate {
    /// Each library module and the modules it imports.
    imports: BTreeMap<ModPath, BTreeSet<ModPath>>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let mut files = BTreeMap::new();
        collect(src, src, &mut files);
        let known: BTreeSet<ModPath> = files.keys().cloned().collect();
        let imports = files
            .iter()
            .map(|(module, file)| {
                let text = std::fs::read_to_string(file).expect("read a source file");
                let targets = paths_in(&code_of(&text))
                    .filter_map(|path| resolve(module, &path, &known))
                    .filter(|target| target != module && !target.is_empty())
                    .collect();
                (module.clone(), targets)
            })
            .collect();
        Self { imports }
    }

    fn edges(&self) -> impl Iterator<Item = (&ModPath, &ModPath)> {
        self.imports
            .iter()
            .flat_map(|(from, to)| to.iter().map(move |to| (from, to)))
    }
}

/// Every `.rs` file under `dir`, by module path; the binaries are not the library's.
fn collect(src: &Path, dir: &Path, files: &mut BTreeMap<ModPath, PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path != src.join("bin") {
                collect(src, &path, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src).expect("below src");
            let mut module: ModPath = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            files.insert(module, path);
        }
    }
}

/// The code of a file: without line comments and without its unit-test module.
fn code_of(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at]);
    text.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each `crate::a::b`, `super::a` or `self::a` path in `code`, split at `::`.
fn paths_in(code: &str) -> impl Iterator<Item = Vec<&str>> {
    let starts = ["crate::", "super::", "self::"];
    let bytes = code.as_bytes();
    code.char_indices().filter_map(move |(at, _)| {
        let boundary = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if !boundary || !starts.iter().any(|s| code[at..].starts_with(s)) {
            return None;
        }
        let end = code[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(code.len(), |len| at + len);
        Some(
            code[at..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .collect(),
        )
    })
}

/// The module a path names: its longest prefix that is a module of the crate.
fn resolve(module: &ModPath, path: &[&str], known: &BTreeSet<ModPath>) -> Option<ModPath> {
    let (mut target, rest) = match *path.first()? {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.clone(), &path[1..]),
        "super" => {
            let mut base = module.clone();
            let mut rest = path;
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        _ => return None,
    };
    for part in rest {
        target.push((*part).to_owned());
        if !known.contains(&target) {
            target.pop();
            break;
        }
    }
    Some(target)
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

/// The strongly connected groups of more than one node (Tarjan).
fn cycles<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct Walk<'a, N: Ord> {
        edges: &'a BTreeMap<N, BTreeSet<N>>,
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        found: Vec<Vec<N>>,
    }
    impl<N: Ord + Clone> Walk<'_, N> {
        fn visit(&mut self, node: &N) {
            let at = self.index.len();
            self.index.insert(node.clone(), at);
            self.low.insert(node.clone(), at);
            self.stack.push(node.clone());
            for next in self.edges.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node.clone(), low);
                } else if self.stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node.clone(), low);
                }
            }
            if self.low[node] == self.index[node] {
                let from = self
                    .stack
                    .iter()
                    .position(|n| n == node)
                    .expect("on the stack");
                let group = self.stack.split_off(from);
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

fn library() -> Crate {
    Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn every_top_level_module_has_a_floor() {
    let krate = library();
    let unplaced: BTreeSet<&str> = krate
        .imports
        .keys()
        .filter_map(|module| module.first())
        .map(String::as_str)
        .filter(|top| floor_of(top).is_none())
        .collect();
    assert!(unplaced.is_empty(), "modules with no floor: {unplaced:?}");
}

#[test]
fn no_import_runs_upwards() {
    let krate = library();
    let upward: Vec<String> = krate
        .edges()
        .filter(|(from, to)| {
            let (Some(low), Some(high)) = (floor_of(&from[0]), floor_of(&to[0])) else {
                return false;
            };
            to[0] != from[0] && high > low
        })
        .map(|(from, to)| format!("{} -> {}", from.join("::"), to.join("::")))
        .collect();
    assert!(upward.is_empty(), "imports that run upwards: {upward:#?}");
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let krate = library();
    let mut tops: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in krate.edges() {
        if from[0] != to[0] {
            tops.entry(&from[0]).or_default().insert(&to[0]);
        }
    }
    let found = cycles(&tops);
    assert!(found.is_empty(), "import cycles between modules: {found:?}");
}

#[test]
fn no_two_files_of_one_directory_import_each_other() {
    let krate = library();
    let mut siblings: BTreeMap<&ModPath, BTreeSet<&ModPath>> = BTreeMap::new();
    for (from, to) in krate.edges() {
        if from.len() == to.len() && from[..from.len() - 1] == to[..to.len() - 1] {
            siblings.entry(from).or_default().insert(to);
        }
    }
    let found = cycles(&siblings);
    assert!(found.is_empty(), "import cycles between files: {found:?}");
}

#[test]
fn the_reader_sees_imports_and_cycles() {
    let code =
        code_of("use crate::policy::Policy;\n// use crate::layer::AuthLayer;\nuse super::form::X;");
    let paths: Vec<Vec<&str>> = paths_in(&code).collect();
    assert_eq!(
        paths,
        vec![
            vec!["crate", "policy", "Policy"],
            vec!["super", "form", "X"]
        ]
    );
    let ring: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::from([
        (1, BTreeSet::from([2])),
        (2, BTreeSet::from([1])),
        (3, BTreeSet::new()),
    ]);
    assert_eq!(cycles(&ring).len(), 1);
}
