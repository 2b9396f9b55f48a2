//! A policy bundle: the Rego files of one tenant or of the system, as paths and texts.

use std::fmt;

/// One Rego file of a bundle.
#[derive(Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// The path the file is reported under (relative to the bundle root, `/`-separated).
    pub path: String,
    /// The Rego source.
    pub text: String,
}

impl fmt::Debug for PolicyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyFile").field("path", &self.path).field("bytes", &self.text.len()).finish()
    }
}

/// Whether a file is policy or test: tests are `*_test.rego` files or files under a `tests/` directory.
/// Tests are compiled only by the test runner, never into the policy that decides requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Policy,
    Test,
}

/// The environments of the guide's bundle layout (`production/`, `staging/`, shared `tests/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Production,
    Staging,
}

impl Stage {
    fn directory(self) -> &'static str {
        match self {
            Stage::Production => "production",
            Stage::Staging => "staging",
        }
    }
}

/// A set of Rego files, ordered by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    files: Vec<PolicyFile>,
}

impl Bundle {
    /// A bundle of exactly these files (path, text). Files that are not `.rego` are ignored.
    pub fn from_sources(sources: Vec<(String, String)>) -> Bundle {
        let mut files: Vec<PolicyFile> = sources
            .into_iter()
            .filter(|(path, _)| path.ends_with(".rego"))
            .map(|(path, text)| PolicyFile { path: path.replace('\\', "/"), text })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        Bundle { files }
    }

    /// A bundle from a tree in the guide's layout (paths relative to its root): the stage's directory plus
    /// `tests/` and any top-level file. The other stage's directory is left out, since it holds the same
    /// packages. A tree without stage directories is taken whole.
    pub fn from_layout(sources: Vec<(String, String)>, stage: Stage) -> Bundle {
        let bundle = Bundle::from_sources(sources);
        let has_stages = bundle.files.iter().any(|f| {
            let top = top_directory(&f.path);
            top == Some("production") || top == Some("staging")
        });
        if !has_stages {
            return bundle;
        }
        let files = bundle
            .files
            .into_iter()
            .filter(|f| match top_directory(&f.path) {
                Some("production") | Some("staging") => top_directory(&f.path) == Some(stage.directory()),
                _ => true,
            })
            .collect();
        Bundle { files }
    }

    /// Every file, ordered by path.
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    /// The policy files (not tests).
    pub fn policy_files(&self) -> impl Iterator<Item = &PolicyFile> {
        self.files.iter().filter(|f| f.kind() == FileKind::Policy)
    }

    /// The test files.
    pub fn test_files(&self) -> impl Iterator<Item = &PolicyFile> {
        self.files.iter().filter(|f| f.kind() == FileKind::Test)
    }

    /// Bytes of policy (tests not counted): what the guide's 100 KB limit applies to.
    pub fn policy_bytes(&self) -> usize {
        self.policy_files().map(|f| f.text.len()).sum()
    }

    /// True when the bundle has no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl PolicyFile {
    /// Policy or test, from the path.
    pub fn kind(&self) -> FileKind {
        let name = self.path.rsplit('/').next().unwrap_or(&self.path);
        let in_tests = self.path.split('/').rev().skip(1).any(|dir| dir == "tests" || dir == "test");
        if name.ends_with("_test.rego") || in_tests { FileKind::Test } else { FileKind::Policy }
    }
}

fn top_directory(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    let first = parts.next()?;
    parts.next().map(|_| first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(paths: &[&str], stage: Stage, expect: &[(&str, FileKind)]) {
        let sources = paths.iter().map(|p| (p.to_string(), String::new())).collect();
        let bundle = Bundle::from_layout(sources, stage);
        let got: Vec<(&str, FileKind)> = bundle.files().iter().map(|f| (f.path.as_str(), f.kind())).collect();
        assert_eq!(got, expect, "paths {paths:?}");
    }

    #[test]
    fn layout() {
        use FileKind::{Policy, Test};
        check(&["a.rego"], Stage::Production, &[("a.rego", Policy)]);
        check(&["a_test.rego", "README.md"], Stage::Production, &[("a_test.rego", Test)]);
        check(
            &["production/main.rego", "staging/main.rego", "tests/main_test.rego"],
            Stage::Production,
            &[("production/main.rego", Policy), ("tests/main_test.rego", Test)],
        );
        check(
            &["production/main.rego", "staging/main.rego", "tests/helpers.rego"],
            Stage::Staging,
            &[("staging/main.rego", Policy), ("tests/helpers.rego", Test)],
        );
        check(
            &["x/tests/y.rego", "tests.rego"],
            Stage::Production,
            &[("tests.rego", Policy), ("x/tests/y.rego", Test)],
        );
        check(&["b.rego", "a.rego", "b.rego"], Stage::Production, &[("a.rego", Policy), ("b.rego", Policy)]);
    }
}
