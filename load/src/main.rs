//! The `hubbub-load` binary: parse the options, obtain the tokens, run, print the report
//! (text or `--json`), and exit 0 on `VERDICT: ok`, 1 on FAIL, 2 when the run could not start.

use std::process::ExitCode;

use clap::Parser;
use hubbub_load::cli::Args;

fn init_tracing() {
    // Progress and diagnostics go to stderr, so stdout carries only the report.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    let tokens = match hubbub_load::obtain(&args.token_source()).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("hubbub-load: tokens: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match args.config(tokens) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hubbub-load: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match hubbub_load::run(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hubbub-load: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.verdict.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
