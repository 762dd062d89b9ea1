//! Embeds the web client into hubbub-local: every file of the client under `../web/` (what
//! `src/web_files.rs` counts as the client: everything but the tests and their tooling) gets an
//! `include_bytes!` in `$OUT_DIR/web_assets.rs`, so `cargo run -p hubbub-local` serves the
//! client from any working directory and a new module needs no list edited. `src/web.rs`
//! includes the generated file; `--web-dir` serves from disk instead.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// The rule of what belongs to the client, shared with `src/web.rs`. The build script only
// walks with it; `content_type` is for serving.
#[allow(dead_code)]
#[path = "src/web_files.rs"]
mod web_files;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("no OUT_DIR")?);
    let web = manifest.join("..").join("web");

    let mut files = Vec::new();
    if web.is_dir() {
        collect(&web, "", &mut files)?;
    } else {
        println!(
            "cargo:warning=web/ does not exist: hubbub-local is built without the web client (use --web-dir)"
        );
        // A missing path makes cargo re-run this script on every build, so a `web/` that
        // appears later is picked up.
        println!("cargo:rerun-if-changed=../web");
    }
    files.sort();

    // Watching the client's own files, not all of `web/`: watching the folder would rebuild
    // hubbub-local on every change under `web/e2e` and `web/test` (and `npm ci` in
    // `web/e2e/node_modules`). A new file is still picked up, because a file of the client is
    // only reached through another that names it (`index.html` or an `import`), and that edit
    // re-runs this script. A deleted file is missing, which re-runs it too.
    let mut code = String::from(
        "/// The web client's files (path relative to `web/`, contents) when hubbub-local was compiled.\n\
         pub(crate) static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        println!("cargo:rerun-if-changed={path}");
        // `{:?}` of a str is a valid Rust string literal (quotes and backslashes escaped).
        writeln!(code, "    ({rel:?}, include_bytes!({path:?})),")?;
    }
    code.push_str("];\n");
    if !files.iter().any(|(rel, _)| rel == "index.html") && web.is_dir() {
        println!(
            "cargo:warning=web/index.html does not exist: hubbub-local answers 404 for it (use --web-dir)"
        );
    }
    std::fs::write(out.join("web_assets.rs"), code)?;
    Ok(())
}

/// Adds the client files under `dir` (which is `web/{rel}`) to `files` as (path relative to
/// `web/`, absolute path), descending into the folders that may hold client files.
fn collect(dir: &Path, rel: &str, files: &mut Vec<(String, String)>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            println!(
                "cargo:warning=web/{rel}: a name that is not UTF-8 is not part of the web client: {:?}",
                entry.file_name()
            );
            continue;
        };
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // `file_type` does not follow symbolic links: a linked folder is not walked (it could
        // lead in a circle), a linked file is embedded when it leads to a file.
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            if web_files::is_client_dir(&child) {
                collect(&path, &child, files)?;
            }
        } else if web_files::is_client_file(&child) && path.is_file() {
            let Some(abs) = path.to_str() else {
                println!(
                    "cargo:warning=web/{child}: the path is not UTF-8, so it cannot be embedded"
                );
                continue;
            };
            files.push((child, abs.to_owned()));
        }
    }
    Ok(())
}
