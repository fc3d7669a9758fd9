use std::process::ExitCode;

use clap::Parser;
use payhook::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Verify(args)) => cli::verify(args),
        Some(Command::PaymentUrl(args)) => cli::payment_url(args),
        None => {
            eprintln!("error: no command given; see payhook --help");
            ExitCode::from(2)
        }
    }
}
