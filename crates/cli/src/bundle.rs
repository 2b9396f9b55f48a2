//! Policy bundles from disk or the default bundle built into the binary, compiled with the native detector
//! builtins.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use detect::DetectorSet;
use policy::{Bundle, CompileOptions, Stage};

/// The default bundle (`policies/` in the repository), built into the binary so a new install needs no files.
static DEFAULT_BUNDLE: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../policies");

/// The most bytes of Rego read from one directory tree (the size limit proper is checked by validation).
const MAX_TREE_BYTES: u64 = 16 * 1024 * 1024;

/// The built-in default bundle for `stage`.
pub fn default_bundle(stage: Stage) -> Bundle {
    Bundle::from_layout(default_sources(), stage)
}

/// Every file of the built-in bundle, all stages, as (path, text).
pub fn default_sources() -> Vec<(String, String)> {
    let mut sources = Vec::new();
    collect_embedded(&DEFAULT_BUNDLE, &mut sources);
    sources
}

fn collect_embedded(dir: &include_dir::Dir<'static>, out: &mut Vec<(String, String)>) {
    for file in dir.files() {
        if file.path().extension().is_some_and(|e| e == "rego")
            && let Some(text) = file.contents_utf8()
        {
            out.push((file.path().to_string_lossy().into_owned(), text.to_owned()));
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

/// Reads every `.rego` file under each path (a file or a directory tree) into a bundle. A directory in the
/// guide's layout (`production/`, `staging/`, `tests/`) contributes the given stage and its tests.
pub fn load_paths(paths: &[PathBuf], stage: Stage) -> Result<Bundle> {
    let mut sources = Vec::new();
    let mut total = 0_u64;
    for path in paths {
        if path.is_dir() {
            walk(path, path, &mut sources, &mut total)?;
        } else {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            sources.push((path.to_string_lossy().into_owned(), text));
        }
    }
    if sources.is_empty() {
        bail!("no .rego files found");
    }
    Ok(Bundle::from_layout(sources, stage))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>, total: &mut u64) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(root, &path, out, total)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            *total += std::fs::metadata(&path).map_or(0, |m| m.len());
            if *total > MAX_TREE_BYTES {
                bail!("{} holds more than {MAX_TREE_BYTES} bytes of Rego", root.display());
            }
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            out.push((relative, text));
        }
    }
    Ok(())
}

/// Compile options with the native detector builtins.
pub fn compile_options(detectors: &Arc<DetectorSet>) -> CompileOptions {
    CompileOptions { extensions: engine::builtins::policy_extensions(detectors), ..CompileOptions::default() }
}

pub fn parse_stage(text: &str) -> Option<Stage> {
    match text {
        "production" => Some(Stage::Production),
        "staging" => Some(Stage::Staging),
        _ => None,
    }
}
