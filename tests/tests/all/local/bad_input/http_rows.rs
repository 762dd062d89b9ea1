//! The HTTP rows of the bad-input catalogue: unknown routes and methods, missing and refused
//! tokens, malformed, oversized and rule-breaking bodies, paths and queries, rooms the
//! caller may not use, and the failed-login limit.

use serde_json::{Value, json};

use super::{Expect, Input, LOBBY, MARK, MISSING, PRIVATE, Row, SHARED, Tokens};

/// One request, `times` times; `content_type` is sent with a body (JSON when `None`).
fn request(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    auth: Option<String>,
    body: Option<String>,
    expect: Expect,
) -> Row {
    Row {
        name,
        input: Input::Http {
            method,
            path: path.into(),
            authorization: auth,
            content_type: None,
            host: None,
            body,
            times: 1,
        },
        expect,
    }
}

/// A POST of a JSON value without a token.
fn post(name: &'static str, path: &str, body: Value, expect: Expect) -> Row {
    request(name, "POST", path, None, Some(body.to_string()), expect)
}

/// A request with mallory's valid bearer token.
fn bearer(
    t: &Tokens,
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    expect: Expect,
) -> Row {
    let body = body.map(|b| b.to_string());
    request(
        name,
        method,
        path,
        Some(format!("Bearer {}", t.valid)),
        body,
        expect,
    )
}

pub fn rows(t: &Tokens) -> Vec<Row> {
    use Expect::{Error, Gateway, Status};
    const BAD: Expect = Error(400, "bad_request");
    const UNAUTHORIZED: Expect = Error(401, "unauthorized");
    let reg = "/auth/register";
    let good_password = "correct horse battery";
    let with_type = |name, content_type, body: String, expect| Row {
        name,
        input: Input::Http {
            method: "POST",
            path: reg.into(),
            authorization: None,
            content_type: Some(content_type),
            host: None,
            body: Some(body),
            times: 1,
        },
        expect,
    };
    vec![
        // Routes API Gateway does not have: its own 404, the function is not invoked.
        request(
            "unknown route",
            "GET",
            format!("/{MARK}"),
            None,
            None,
            Gateway(404),
        ),
        request(
            "unknown route below a route",
            "GET",
            "/rooms/a/b/c",
            None,
            None,
            Gateway(404),
        ),
        request(
            "wrong method on /rooms",
            "DELETE",
            "/rooms",
            None,
            None,
            Gateway(404),
        ),
        request(
            "wrong method on /auth/login",
            "GET",
            "/auth/login",
            None,
            None,
            Gateway(404),
        ),
        request(
            "PUT on /health",
            "PUT",
            "/health",
            None,
            Some("{}".into()),
            Gateway(404),
        ),
        // A `Host` that is no host name: the server answers as for its own address.
        Row {
            name: "health with a Host whose port is not a number",
            input: Input::Http {
                method: "GET",
                path: "/health".into(),
                authorization: None,
                content_type: None,
                host: Some("bad-input.example:port"),
                body: None,
                times: 1,
            },
            expect: Status(200),
        },
        Row {
            name: "health with a Host of two ports",
            input: Input::Http {
                method: "GET",
                path: "/health".into(),
                authorization: None,
                content_type: None,
                host: Some("bad-input.example:80:80"),
                body: None,
                times: 1,
            },
            expect: Status(200),
        },
        // Authorization.
        request(
            "rooms without Authorization",
            "GET",
            "/rooms",
            None,
            None,
            UNAUTHORIZED,
        ),
        request(
            "rooms with a Basic Authorization",
            "GET",
            "/rooms",
            Some(format!("Basic {MARK}")),
            None,
            UNAUTHORIZED,
        ),
        request(
            "rooms with Bearer and no token",
            "GET",
            "/rooms",
            Some("Bearer".into()),
            None,
            UNAUTHORIZED,
        ),
        request(
            "rooms with a garbage token",
            "GET",
            "/rooms",
            Some(format!("Bearer {MARK}")),
            None,
            UNAUTHORIZED,
        ),
        request(
            "rooms with an expired token",
            "GET",
            "/rooms",
            Some(format!("Bearer {}", t.expired)),
            None,
            UNAUTHORIZED,
        ),
        request(
            "rooms with a wrong signature",
            "GET",
            "/rooms",
            Some(format!("Bearer {}", t.wrong_signature)),
            None,
            UNAUTHORIZED,
        ),
        request(
            "rooms with another issuer's token",
            "GET",
            "/rooms",
            Some(format!("Bearer {}", t.wrong_issuer)),
            None,
            UNAUTHORIZED,
        ),
        request(
            "rooms with alg none",
            "GET",
            "/rooms",
            Some(format!("Bearer {}", t.alg_none)),
            None,
            UNAUTHORIZED,
        ),
        request(
            "create room without a token",
            "POST",
            "/rooms",
            None,
            Some(json!({"id": "x", "name": MARK}).to_string()),
            UNAUTHORIZED,
        ),
        // Bodies.
        request("register with no body", "POST", reg, None, None, BAD),
        request(
            "register with invalid JSON",
            "POST",
            reg,
            None,
            Some(format!("{{\"username\":\"{MARK}")),
            BAD,
        ),
        post(
            "register with an array",
            reg,
            json!([MARK, good_password]),
            BAD,
        ),
        post("register with a string", reg, json!(MARK), BAD),
        post(
            "register without password",
            reg,
            json!({"username": MARK}),
            BAD,
        ),
        post(
            "register with a number username",
            reg,
            json!({"username": 12345, "password": MARK}),
            BAD,
        ),
        post(
            "register with an extra field",
            reg,
            json!({"username": "ann", "password": good_password, MARK: 1}),
            BAD,
        ),
        post(
            "register username with bad chars",
            reg,
            json!({"username": format!("{MARK} !"), "password": good_password}),
            BAD,
        ),
        post(
            "register username of 2 chars",
            reg,
            json!({"username": "ab", "password": good_password}),
            BAD,
        ),
        post(
            "register username of 33 chars",
            reg,
            json!({"username": "a".repeat(33), "password": good_password}),
            BAD,
        ),
        post(
            "register password of 7 chars",
            reg,
            json!({"username": "bad-pw", "password": "1234567"}),
            BAD,
        ),
        post(
            "register password of 129 chars",
            reg,
            json!({"username": "bad-pw", "password": format!("{MARK}{}", "p".repeat(129 - MARK.len()))}),
            BAD,
        ),
        with_type(
            "register with a form body",
            "application/x-www-form-urlencoded",
            format!("username={MARK}&password=secret"),
            BAD,
        ),
        // The body is parsed as JSON whatever its content type says (docs/protocol.md).
        with_type(
            "register with JSON sent as text/plain",
            "text/plain",
            json!({"username": "plain-type", "password": good_password}).to_string(),
            Status(201),
        ),
        post(
            "register a taken username",
            reg,
            json!({"username": "PLAIN-TYPE", "password": good_password}),
            Error(409, "conflict"),
        ),
        request(
            "body over 16384 bytes",
            "POST",
            reg,
            None,
            Some(json!({"username": MARK, "password": "p".repeat(16 * 1024)}).to_string()),
            Error(413, "payload_too_large"),
        ),
        request(
            "health with a body over 16384 bytes",
            "GET",
            "/health",
            None,
            Some(format!("{MARK}{}", " ".repeat(16 * 1024))),
            Error(413, "payload_too_large"),
        ),
        post(
            "login as nobody",
            "/auth/login",
            json!({"username": MARK, "password": MARK}),
            UNAUTHORIZED,
        ),
        post(
            "login with a number password",
            "/auth/login",
            json!({"username": "ann", "password": 1}),
            BAD,
        ),
        post(
            "refresh with a garbage token",
            "/auth/refresh",
            json!({"refreshToken": MARK}),
            UNAUTHORIZED,
        ),
        post(
            "refresh with an empty token",
            "/auth/refresh",
            json!({"refreshToken": ""}),
            UNAUTHORIZED,
        ),
        post("refresh without a token", "/auth/refresh", json!({}), BAD),
        // Logout answers 204 whatever the token: it tells nothing about it.
        post(
            "logout with a garbage token",
            "/auth/logout",
            json!({"refreshToken": MARK}),
            Status(204),
        ),
        // Rooms.
        bearer(
            t,
            "create room with a bad id",
            "POST",
            "/rooms",
            Some(json!({"id": MARK, "name": "x"})),
            BAD,
        ),
        bearer(
            t,
            "create room without name",
            "POST",
            "/rooms",
            Some(json!({"id": "no-name"})),
            BAD,
        ),
        bearer(
            t,
            "create room with a blank name",
            "POST",
            "/rooms",
            Some(json!({"id": "blank", "name": "  "})),
            BAD,
        ),
        bearer(
            t,
            "create room with a 101-char name",
            "POST",
            "/rooms",
            Some(
                json!({"id": "long-name", "name": format!("{MARK}{}", "n".repeat(101 - MARK.len()))}),
            ),
            BAD,
        ),
        bearer(
            t,
            "create room with a control char in the name",
            "POST",
            "/rooms",
            Some(json!({"id": "ctl", "name": format!("{MARK}\n")})),
            BAD,
        ),
        bearer(
            t,
            "create room with private a string",
            "POST",
            "/rooms",
            Some(json!({"id": "priv-str", "name": "x", "private": MARK})),
            BAD,
        ),
        bearer(
            t,
            "create a room that exists",
            "POST",
            "/rooms",
            Some(json!({"id": LOBBY, "name": "x"})),
            Error(409, "conflict"),
        ),
        bearer(
            t,
            "add member with a bad room",
            "POST",
            format!("/rooms/{MARK}/members"),
            Some(json!({"userId": "u-x"})),
            BAD,
        ),
        bearer(
            t,
            "add member with a 129-byte userId",
            "POST",
            format!("/rooms/{LOBBY}/members"),
            Some(json!({"userId": format!("{MARK}{}", "u".repeat(129 - MARK.len()))})),
            BAD,
        ),
        bearer(
            t,
            "add member to a private room",
            "POST",
            format!("/rooms/{PRIVATE}/members"),
            Some(json!({"userId": "u-mallory"})),
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "add member to a missing room",
            "POST",
            format!("/rooms/{MISSING}/members"),
            Some(json!({"userId": "u-x"})),
            Error(404, "not_found"),
        ),
        // Members, roles and read state: the caller is a plain member of SHARED and nothing
        // of PRIVATE; owners alone add and remove, members alone see who reads what.
        bearer(
            t,
            "add member as a non-owner",
            "POST",
            format!("/rooms/{SHARED}/members"),
            Some(json!({"userId": "u-someone"})),
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "remove another member as a non-owner",
            "DELETE",
            format!("/rooms/{SHARED}/members/u-owner"),
            None,
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "remove a member of a private room",
            "DELETE",
            format!("/rooms/{PRIVATE}/members/u-owner"),
            None,
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "members and read positions of a private room",
            "GET",
            format!("/rooms/{PRIVATE}/members"),
            None,
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "members of a public room",
            "GET",
            format!("/rooms/{LOBBY}/members"),
            None,
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "members of a missing room",
            "GET",
            format!("/rooms/{MISSING}/members"),
            None,
            Error(404, "not_found"),
        ),
        bearer(
            t,
            "mark read in a private room",
            "PUT",
            format!("/rooms/{PRIVATE}/read"),
            Some(json!({"seq": 1})),
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "mark read in a missing room",
            "PUT",
            format!("/rooms/{MISSING}/read"),
            Some(json!({"seq": 1})),
            Error(404, "not_found"),
        ),
        bearer(
            t,
            "mark read with a negative seq",
            "PUT",
            format!("/rooms/{LOBBY}/read"),
            Some(json!({"seq": -1})),
            BAD,
        ),
        bearer(
            t,
            "direct room with nobody",
            "POST",
            format!("/dm/{MARK}"),
            None,
            Error(404, "not_found"),
        ),
        bearer(
            t,
            "messages with limit=0",
            "GET",
            format!("/rooms/{LOBBY}/messages?limit=0"),
            None,
            BAD,
        ),
        bearer(
            t,
            "messages with limit=101",
            "GET",
            format!("/rooms/{LOBBY}/messages?limit=101"),
            None,
            BAD,
        ),
        bearer(
            t,
            "messages with a word for limit",
            "GET",
            format!("/rooms/{LOBBY}/messages?limit={MARK}"),
            None,
            BAD,
        ),
        bearer(
            t,
            "messages with before=0",
            "GET",
            format!("/rooms/{LOBBY}/messages?before=0"),
            None,
            BAD,
        ),
        bearer(
            t,
            "messages with before and after",
            "GET",
            format!("/rooms/{LOBBY}/messages?before=9&after=1"),
            None,
            BAD,
        ),
        bearer(
            t,
            "messages of a bad room",
            "GET",
            format!("/rooms/{MARK}/messages"),
            None,
            BAD,
        ),
        bearer(
            t,
            "messages of a private room",
            "GET",
            format!("/rooms/{PRIVATE}/messages"),
            None,
            Error(403, "forbidden"),
        ),
        bearer(
            t,
            "messages of a missing room",
            "GET",
            format!("/rooms/{MISSING}/messages"),
            None,
            Error(404, "not_found"),
        ),
        // The failed-login limit: 5 per address (docs/protocol.md); earlier rows' failures count.
        Row {
            name: "failed-login flood",
            input: Input::Http {
                method: "POST",
                path: "/auth/login".into(),
                authorization: None,
                content_type: None,
                host: None,
                body: Some(json!({"username": "ann", "password": MARK}).to_string()),
                times: 6,
            },
            expect: Error(429, "rate_limited"),
        },
        // The registration limit: 10 per address and hour; every well-formed attempt counts
        // (two rows above did), taken names included.
        Row {
            name: "registration flood",
            input: Input::Http {
                method: "POST",
                path: reg.into(),
                authorization: None,
                content_type: None,
                host: None,
                body: Some(json!({"username": "flood", "password": good_password}).to_string()),
                times: 9,
            },
            expect: Error(429, "rate_limited"),
        },
        // Past the limit a malformed registration is still told what is wrong with it: the
        // limit counts (and is checked for) well-formed attempts only.
        post(
            "register a bad username past the registration limit",
            reg,
            json!({"username": format!("{MARK} !"), "password": good_password}),
            BAD,
        ),
    ]
}
