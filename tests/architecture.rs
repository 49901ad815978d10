//! The crate's layers point one way (issue #14): a module may name modules of its
//! own layer or below, never above. The map is `LAYERS`; `lib.rs` documents the same
//! order. Code references are `crate::x` paths and `super::` never leaves a top-level
//! module here, so scanning `crate::` outside comments finds every arrow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top. Modules on one line are one layer.
const LAYERS: &[&[&str]] = &[
    &["digest", "canonical", "fsutil", "pin", "logging", "tls"],
    &["crypto"],
    &["tuf"],
    &["store"],
    &["cache", "policy"],
    &["ops"],
    &["plugins", "admission", "import"],
    &["cli"],
];

/// Modules exempt from the rule: documentation that links to everything.
const EXEMPT: &[&str] = &["manual", "lib"];

/// Arrows that still run upward, each with the issue that removes it. The test
/// fails when one disappears too, so this list only shrinks.
const KNOWN_UPWARD: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a line without its `//` comment (strings rarely hold `crate::`).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    line.split(" //").next().unwrap_or(line)
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward: BTreeSet<(String, String)> = BTreeSet::new();
    let mut examples: Vec<String> = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let from = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if from == "bin" || from == "main" || EXEMPT.contains(&from.as_str()) {
            continue;
        }
        let from_layer = layer_of(&from)
            .unwrap_or_else(|| panic!("module {from} is not in LAYERS: place it in a layer"));
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = code(line);
            assert!(
                !code.contains("crate::{"),
                "{}:{}: write one `use crate::module::...` per module so this scan sees the arrow",
                rel.display(),
                n + 1
            );
            for (i, _) in code.match_indices("crate::") {
                let to: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let Some(to_layer) = layer_of(&to) else {
                    continue;
                };
                if to_layer > from_layer && upward.insert((from.clone(), to.clone())) {
                    examples.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
                }
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD
        .iter()
        .map(|(a, b, _)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = upward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "modules import a higher layer: {new:?}\nfirst occurrences:\n{}",
        examples.join("\n")
    );
    let gone: Vec<_> = known.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "these upward arrows are gone: remove them from KNOWN_UPWARD: {gone:?}"
    );
}
