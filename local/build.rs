//! Embeds the web client into hubbub-local: for each of `../web/index.html`, `app.js` and
//! `style.css` that exists at compile time, `$OUT_DIR/web_assets.rs` gets an
//! `include_bytes!` of it (so `cargo run -p hubbub-local` serves the client from any working
//! directory); a missing file is simply left out and answers 404 (`--web-dir` serves from
//! disk instead). `src/web.rs` includes the generated file.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The files the web client consists of (kept in step with `src/web.rs`).
const FILES: [&str; 3] = ["index.html", "app.js", "style.css"];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("no OUT_DIR")?);
    let web = manifest.join("..").join("web");
    // Only the client's own files: watching all of `web/` would rebuild on every change
    // under `web/e2e/node_modules`. A missing file makes cargo re-run this script on every
    // build, so a file that appears later is picked up too.
    for name in FILES {
        println!("cargo:rerun-if-changed=../web/{name}");
    }

    let mut code = String::from(
        "/// The web client's files that existed in `web/` when hubbub-local was compiled.\n\
         pub(crate) static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for name in FILES {
        let path = web.join(name);
        if !path.is_file() {
            println!(
                "cargo:warning=web/{name} does not exist: hubbub-local answers 404 for it (use --web-dir)"
            );
            continue;
        }
        let Some(path) = path.to_str() else {
            println!("cargo:warning=web/{name}: the path is not UTF-8, so it cannot be embedded");
            continue;
        };
        // `{:?}` of a str is a valid Rust string literal (quotes and backslashes escaped).
        writeln!(code, "    ({name:?}, include_bytes!({path:?})),")?;
    }
    code.push_str("];\n");
    std::fs::write(out.join("web_assets.rs"), code)?;
    Ok(())
}
