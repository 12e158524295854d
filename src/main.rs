//! `awsha`: high availability for pfSense on AWS. When a node becomes CARP MASTER, awsha makes the
//! VPC follow: secondary private IPs, routes and Elastic IPs move to this node's ENIs, tagged with
//! who moved them; `reconcile` repairs drift and settles split brains every 60 s.
//!
//! One binary crate, like fd: every module is private to it, so an unused item is a warning.
//! `main` parses the command line, builds the real edges and passes them to the command.
//! Rooms (docs/architecture.md), each depending only on the ones listed before it:
//! - `base`: value types and text rules (addresses, ids, times), no I/O;
//! - `pfsense`: the box — config.xml, validation, VHID names, ifconfig, the run directory;
//! - `aws`: the EC2 trait and its SDK implementation, throttling, IMDS;
//! - `log`, `settings`, `cli`, `report`: what a run logs, needs and prints;
//! - `core`: the decisions (node, plan, apply, observe, judge, tags), every edge behind a trait;
//! - `edges`: the traits' real implementations, bundled for `main` to pass down;
//! - `commands`: one file per command.

mod aws;
mod base;
mod cli;
mod commands;
mod core;
mod edges;
mod log;
mod pfsense;
mod report;
mod settings;
#[cfg(test)]
mod testing;

use clap::Parser;

use crate::cli::Cli;
use crate::edges::Real;
use crate::report::Report;

fn main() {
    report::mark_process_start();
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
    // The runtime and the real edges are built here and passed down: nothing below main reaches
    // the outside world on its own.
    let settings = match settings::resolve(&cli, &env) {
        Ok(s) => s,
        Err(e) => finish(Report::fail(cli.command.name(), format!("{e:#}")), cli.json),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => finish(
            Report::fail(cli.command.name(), format!("cannot start the runtime: {e}")),
            cli.json,
        ),
    };
    let edges = Real {
        ifconfig: settings.ifconfig.clone(),
    };
    let report = runtime.block_on(commands::run(&edges, &settings, &cli.command));
    // Dropping the runtime would wait for abandoned requests; the report is what matters now.
    std::mem::forget(runtime);
    finish(report, settings.json);
}

/// Prints the report (JSON on stdout, or text) and exits with its code: the one writer of stdout.
#[allow(clippy::print_stdout)]
fn finish(report: Report, json: bool) -> ! {
    if let Some(e) = &report.error {
        log::error(e);
    }
    if let Some(t) = &report.timeline {
        t.mark("report written");
    }
    if json {
        println!("{}", report.to_json_output());
    } else if report.error.is_none() {
        print!("{}", report.to_text());
    }
    std::process::exit(report.exit_code());
}
