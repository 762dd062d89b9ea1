//! hubbub-local's command line: flags, environment and their defaults.

use hubbub_tests::settings::SECRET;
use std::time::Duration;

#[test]
fn local_command_line() {
    use hubbub_local::cli::{Command, parse_args};
    use hubbub_local::config::DEV_JWT_SECRET;
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let no_env = |_: &str| None;
    let Ok(Command::Serve(c)) = parse_args(args(&[]), &no_env) else {
        panic!("defaults")
    };
    assert_eq!((c.port, c.stage.as_str()), (3001, "local"));
    assert_eq!(c.host.to_string(), "127.0.0.1");
    assert!(c.jwt_secret_is_dev_default);
    assert_eq!(c.jwt.secret, DEV_JWT_SECRET.as_bytes());
    assert_eq!(c.idle_timeout, Duration::from_secs(600));
    assert_eq!(c.max_connection, Duration::from_secs(7200));
    assert!(c.database_url.is_none() && c.dynamodb_endpoint.is_none());

    assert_eq!(c.cors_origins, ["*"]);
    assert_eq!(c.web_dir, None);
    assert_eq!(c.accounts.max_body_bytes, 16 * 1024);

    let temp_dir = std::env::temp_dir().display().to_string();
    let env = |v: &str| match v {
        "HUBBUB_JWT_SECRET" => Some(SECRET.to_owned()),
        "HUBBUB_MAX_BODY_BYTES" => Some("4096".to_owned()),
        _ => None,
    };
    let Ok(Command::Serve(c)) = parse_args(
        args(&[
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--stage",
            "dev",
            "--idle-timeout-secs",
            "5",
            "--max-connection-secs",
            "60",
            "--database-url",
            "postgres://u@h/db",
            "--dynamodb-endpoint",
            "http://127.0.0.1:8000",
            "--cors-origin",
            "http://a.test, http://b.test:8080",
            "--cors-origin",
            "https://c.test",
            "--web-dir",
            temp_dir.as_str(),
        ]),
        &env,
    ) else {
        panic!("flags")
    };
    assert_eq!(
        c.cors_origins,
        ["http://a.test", "http://b.test:8080", "https://c.test"]
    );
    assert_eq!(c.web_dir.as_deref(), Some(std::env::temp_dir().as_path()));
    assert_eq!((c.port, c.stage.as_str()), (0, "dev"));
    assert!(!c.jwt_secret_is_dev_default);
    assert_eq!(c.jwt.secret, SECRET.as_bytes());
    assert_eq!(c.idle_timeout, Duration::from_secs(5));
    assert_eq!(c.max_connection, Duration::from_secs(60));
    assert_eq!(c.database_url.as_deref(), Some("postgres://u@h/db"));
    assert_eq!(c.accounts.max_body_bytes, 4096, "the Lambda's variables");

    let Ok(Command::Token(t)) = parse_args(args(&["token", "--user", "alice"]), &no_env) else {
        panic!("token")
    };
    assert_eq!(
        (t.user_id.as_str(), t.user_name.as_str()),
        ("u-alice", "alice")
    );
    assert!(matches!(
        parse_args(args(&["--help"]), &no_env),
        Ok(Command::Help(text)) if text.contains("--jwt-secret")
    ));
    for bad in [
        &["--port"][..],
        &["--port", "x"],
        &["--stage", "a/b"],
        &["--jwt-secret", "short"],
        &["--idle-timeout-secs", "0"],
        &["--dynamodb-endpoint", "localhost:8000"],
        &["--bogus"],
        &["--cors-origin", "app.test"],
        &["--cors-origin", "http://a.test/path"],
        &["--web-dir", "/nonexistent/hubbub-web"],
        &["token"],
    ] {
        assert!(parse_args(args(bad), &no_env).is_err(), "{bad:?}");
    }
}
