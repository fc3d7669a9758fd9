use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use payhook::cli::{self, Cli, Command};

fn main() -> ExitCode {
    // Only this directory's .env: a parent's belongs to something else. A file
    // that does not parse stops here; ignoring it would start demo mode.
    if let Err(e) = payhook::config::load_dotenv(Path::new(".env")) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => cli::serve(),
        Some(Command::Migrate) => cli::migrate(),
        Some(Command::Simulate(args)) => cli::simulate(args),
        Some(Command::Verify(args)) => cli::verify(args),
        Some(Command::VerifyCheckout(args)) => cli::verify_checkout(args),
        Some(Command::VerifyGateway(args)) => cli::verify_gateway(args),
        Some(Command::PaymentUrl(args)) => cli::payment_url(args),
        Some(Command::Orders(args)) => cli::orders(args),
        Some(Command::Callbacks(args)) => cli::callbacks(args),
        Some(Command::Events(args)) => cli::events(args),
        Some(Command::Sessions(args)) => cli::sessions(args),
        Some(Command::IngestUrl { url, json }) => payhook::operator::ingest_url(&url, json),
        Some(Command::Prune {
            older_than,
            yes,
            json,
        }) => payhook::operator::prune(&older_than, yes, json),
        Some(Command::Erase {
            order,
            email,
            project_id,
            json,
        }) => match (order, email) {
            (Some(order), _) => payhook::operator::erase(&order, project_id.as_deref(), json),
            (None, Some(email)) => payhook::operator::erase_email(&email, json),
            (None, None) => {
                eprintln!("error: give --order ID or --email ADDR");
                ExitCode::from(2)
            }
        },
        Some(Command::NotifySecret) => cli::notify_secret(),
        Some(Command::Openapi { out }) => cli::openapi(out.as_deref()),
        Some(Command::Check { json }) => payhook::check::run(json),
    }
}
