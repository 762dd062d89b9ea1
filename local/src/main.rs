//! The `hubbub-local` binary: `hubbub-local [serve] [OPTIONS]` runs the emulator until Ctrl-C
//! (every open connection then gets its `$disconnect`); `hubbub-local token --user NAME`
//! prints a development token signed with the configured secret.

use std::process::ExitCode;

use hubbub_core::auth::JwtIssuer;
use hubbub_core::config::env_lookup;
use hubbub_core::error::chain;
use hubbub_local::Server;
use hubbub_local::config::{Command, TokenRequest, USAGE, parse_args};

fn token(req: &TokenRequest) -> ExitCode {
    let ttl = time::Duration::seconds(i64::try_from(req.ttl.as_secs()).unwrap_or(i64::MAX));
    let issued =
        JwtIssuer::hs256(&req.jwt).and_then(|i| i.issue(&req.user_id, &req.user_name, ttl));
    match issued {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hubbub-local: could not sign a token: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1), &env_lookup) {
        Ok(Command::Serve(c)) => *c,
        Ok(Command::Token(req)) => return token(&req),
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hubbub-local: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    hubbub_core::telemetry::init();
    let server = match Server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubbub-local: {}", chain(&e));
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.banner());
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "cannot wait for Ctrl-C; shutting down");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}
