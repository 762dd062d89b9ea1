//! The `hubbub-load` binary: parse the options, obtain the tokens, run, print the report
//! (text or `--json`), and exit 0 on `VERDICT: ok`, 1 on FAIL, 2 when the run could not start.

use std::process::ExitCode;

use clap::Parser;
use hubbub_load::cli::Args;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn init_tracing() {
    // Progress and diagnostics go to stderr, so stdout carries only the report.
    // `RUST_LOG` as `target=level` pairs (tracing_subscriber's `Targets`), else `info`.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
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
