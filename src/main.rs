use std::process::ExitCode;

use clap::Parser;
use payhook::cli::{self, Cli, Command};

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is reported by the settings.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => cli::serve(),
        Some(Command::Migrate) => cli::migrate(),
        Some(Command::Simulate(args)) => cli::simulate(args),
        Some(Command::Verify(args)) => cli::verify(args),
        Some(Command::PaymentUrl(args)) => cli::payment_url(args),
        Some(Command::Orders(args)) => cli::orders(args),
    }
}
