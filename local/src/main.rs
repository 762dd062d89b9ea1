//! The `hubbub-local` binary: `hubbub-local [serve] [OPTIONS]` runs the emulator until Ctrl-C
//! (every open connection then gets its `$disconnect`); `hubbub-local token --user NAME
//! [--count N]` prints development tokens signed with the configured secret.

use std::process::ExitCode;

use hubbub_core::config::env_lookup;
use hubbub_core::error::chain;
use hubbub_local::Server;
use hubbub_local::cli::{CliError, Command, TokenRequest, parse_args};

fn token(req: &TokenRequest) -> ExitCode {
    // Buffered: `--count` may print many thousands of lines.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match req.write_tokens(&mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubbub-local: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1), &env_lookup) {
        Ok(Command::Serve(c)) => *c,
        Ok(Command::Token(req)) => return token(&req),
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        // clap's own message names the problem and shows the usage.
        Err(CliError::Usage(e)) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("hubbub-local: {e}\n\nSee `hubbub-local --help`.");
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
