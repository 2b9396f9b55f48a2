//! Loading the shipped bundle and building inputs.

use std::path::{Path, PathBuf};

use policy::{Bundle, Stage};

pub fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// Every file under `root`, as (path relative to root, text).
pub fn read_tree(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.map(|e| e.path()).unwrap_or_default();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.push((relative, text));
            }
        }
    }
    out
}

pub fn shipped(stage: Stage) -> Bundle {
    Bundle::from_layout(read_tree(&repo_policies()), stage)
}

pub fn sources(files: &[(&str, &str)]) -> Bundle {
    Bundle::from_sources(files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect())
}
