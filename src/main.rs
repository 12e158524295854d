//! The `awsha` command: parse the command line, run one command, print its report, exit with its
//! code. Everything else is in the library (`src/lib.rs`).

use clap::Parser;

use awsha::cli::{self, Cli, Command};
use awsha::commands::{doctor, failover, interfaces, reconcile, status, validate};
use awsha::report::Report;
use awsha::{log, settings};

fn main() {
    // args_os: an argument that is not UTF-8 is clap's error to report, not a panic.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args: Vec<String> = raw.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let cli = match Cli::try_parse_from(&raw) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || !args.iter().any(|a| a == "--json")
            {
                e.exit();
            }
            let first = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string();
            finish(Report::fail(cli::guess_command(&args), first), true);
        }
    };
    log::set_verbosity(if cli.quiet { -1 } else { cli.verbose.min(2) as i8 });
    let env = |name: &str| std::env::var(name).ok();
    let settings = match settings::resolve(&cli, &env) {
        Ok(s) => s,
        Err(e) => finish(Report::fail(cli.command.name(), e), cli.json),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => finish(
            Report::fail(cli.command.name(), format!("cannot start the runtime: {e}")),
            cli.json,
        ),
    };
    let report = runtime.block_on(async {
        match &cli.command {
            Command::Failover { vhid, dry_run, force } => {
                failover::run(
                    &settings,
                    failover::Request {
                        vhid,
                        dry_run: *dry_run,
                        force: *force,
                    },
                    &env,
                )
                .await
            }
            Command::Validate => validate::run(&settings),
            Command::Interfaces => interfaces::interfaces(&settings, &env).await,
            Command::MapIp {
                interface,
                from_subnet,
                ip,
            } => interfaces::map_ip(&settings, interface, from_subnet, ip, &env).await,
            Command::Reconcile { dry_run } => reconcile::run(&settings, *dry_run, &env).await,
            Command::Status => status::run(&settings, &env).await,
            Command::Doctor => doctor::run(&settings, &env).await,
        }
    });
    // Dropping the runtime would wait for abandoned requests; the report is what matters now.
    std::mem::forget(runtime);
    finish(report, settings.json);
}

/// Prints the report (JSON on stdout, or text) and exits with its code.
fn finish(report: Report, json: bool) -> ! {
    if let Some(e) = &report.error {
        log::error(e);
    }
    if json {
        println!("{}", report.to_json());
    } else if report.error.is_none() {
        print!("{}", report.to_text());
    }
    std::process::exit(report.exit_code());
}
