//! Which files under `web/` make up the web client, and the content type of each. One rule for
//! both ways of serving it: `build.rs` includes this file to decide what to embed, and
//! [`crate::web`] applies it to `--web-dir`, so the two serve the same set of files.
//!
//! The client is every file under `web/` except what only its tests use: the `e2e/` and
//! `test/` folders, any `node_modules/`, `package.json` / `package-lock.json` (they exist only
//! so node can run the tests) and `*.test.js` / `*.test.mjs`. Hidden files (a name starting
//! with `.`) are not part of it either. A path is `/`-separated and relative to `web/`; every
//! name in it is made of ASCII letters, digits, `.`, `_` and `-`, so no path can name anything
//! outside the folder (`..` is a hidden name) and no name needs percent-encoding in a URL.

/// Folders directly under `web/` that hold tests, not client files.
const TEST_DIRS: [&str; 2] = ["e2e", "test"];
/// Folders that are never part of the client, at any depth.
const NEVER_DIRS: [&str; 1] = ["node_modules"];
/// File names that exist only for the test tooling.
const TOOLING_FILES: [&str; 2] = ["package.json", "package-lock.json"];
/// Name endings of test files.
const TEST_SUFFIXES: [&str; 2] = [".test.js", ".test.mjs"];

/// Whether `name` (one path segment) may be part of a client path.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether the folder `rel` (relative to `web/`, `""` for `web/` itself) may hold client
/// files, so that walking it is worthwhile.
pub fn is_client_dir(rel: &str) -> bool {
    if rel.is_empty() {
        return true;
    }
    let mut segments = rel.split('/').enumerate();
    segments.all(|(i, s)| {
        plain_name(s) && !NEVER_DIRS.contains(&s) && !(i == 0 && TEST_DIRS.contains(&s))
    })
}

/// Whether the file `rel` (relative to `web/`) is part of the web client.
pub fn is_client_file(rel: &str) -> bool {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    is_client_dir(dir)
        && plain_name(name)
        && !TOOLING_FILES.contains(&name)
        && !TEST_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// The `content-type` to serve the file `name` with, from its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        // Module scripts must come with a JavaScript type, or browsers refuse to run them.
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "md" => "text/markdown; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_every_file_but_the_tests() {
        for rel in [
            "index.html",
            "app.js",
            "room-state.js",
            "style.css",
            "README.md",
            "img/logo.svg",
            "vendor/lib/x.mjs",
            "tests.js",
            "contest/a.js",
        ] {
            assert!(is_client_file(rel), "{rel}");
        }
        for rel in [
            "e2e/harness.mjs",
            "e2e/node_modules/playwright-core/index.js",
            "test/room-state.test.mjs",
            "test/harness.mjs",
            "node_modules/x/index.js",
            "lib/node_modules/x.js",
            "package.json",
            "package-lock.json",
            "lib/package.json",
            "room-state.test.mjs",
            "lib/x.test.js",
            ".gitignore",
            ".hidden/app.js",
            "../Cargo.toml",
            "a/../../Cargo.toml",
            "/etc/passwd",
            "",
            "img/",
            "a//b.js",
            "with space.js",
            "%2e%2e/x.js",
            "back\\slash.js",
        ] {
            assert!(!is_client_file(rel), "{rel}");
        }
        // A folder named like a test folder deeper down is the client's own.
        assert!(is_client_file("lib/test/x.js"));
        assert!(is_client_dir(""));
        assert!(is_client_dir("img"));
        assert!(!is_client_dir("e2e"));
        assert!(!is_client_dir("img/node_modules"));
    }

    #[test]
    fn content_types_follow_the_extension() {
        for (name, expected) in [
            ("index.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("lib/x.mjs", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("icon.svg", "image/svg+xml"),
            ("icon.PNG", "image/png"),
            ("favicon.ico", "image/x-icon"),
            ("manifest.json", "application/json"),
            ("README.md", "text/markdown; charset=utf-8"),
            ("archive.tar.gz", "application/octet-stream"),
            ("LICENSE", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), expected, "{name}");
        }
    }
}
