//! Ids shaped like API Gateway's: connection, request and message ids are 16-character base64
//! strings ending in `=` (the encoding of 11 random bytes), such as `L0SM9cOFvHcCIhw=`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A fresh id such as `L0SM9cOFvHcCIhw=`.
///
/// Ids containing `+` or `/` are drawn again: a connection id travels in the
/// `@connections/{id}` path, where `/` would split the path and `+` is easy to mangle in
/// hand-written URLs (curl, wscat scripts). Some 38% of draws hit one of them, so this loops
/// fewer than two times on average.
pub fn new_id() -> String {
    loop {
        let bytes: [u8; 11] = rand::random();
        let id = STANDARD.encode(bytes);
        if !id.contains(['+', '/']) {
            return id;
        }
    }
}
