//! Shared by the source-rule tests (layering, unsafe confinement).

use std::fs;
use std::path::{Path, PathBuf};

/// `p` itself if it is a file, else every `.rs` file under it.
pub fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_file() {
        out.push(p.to_path_buf());
        return;
    }
    for e in fs::read_dir(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
        let path = e.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}
