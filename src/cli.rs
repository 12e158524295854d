//! The command line (docs/contracts.md §2, fixed): flags and subcommands only. What a run needs, resolved
//! from these, the environment and defaults, is in `settings`.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "awsha",
    version,
    about = "High availability for pfSense on AWS: make the VPC follow CARP",
    long_about = "High availability for pfSense on AWS. When this node becomes CARP MASTER for a VHID, \
awsha moves that VHID's secondary private IPs, VPC routes and Elastic IPs to this node's ENIs and tags \
them; every 60 s `reconcile` checks they still point here and resolves a split brain.\n\n\
Exit codes: 0 all done (or nothing to do); 1 at least one AWS action failed (the others were still \
attempted); 2 usage, configuration or environment error (nothing was changed in AWS)."
)]
pub struct Cli {
    /// config.xml to read [env: AWSHA_CONFIG] [default: /conf/config.xml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print one JSON object on stdout (logs stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// Bound the whole run, in seconds [env: AWSHA_DEADLINE] [default: 30]
    #[arg(long, global = true, value_name = "SECS")]
    pub deadline: Option<String>,

    /// More detail on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Errors only on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Act for one VHID now (called when this node becomes CARP MASTER)
    Failover {
        /// wan@1, WAN@1, 1@ena0 (as rc.carpmaster passes it) or _vip<uniqid>
        vhid: String,
        /// Show the plan; send no mutating request
        #[arg(long)]
        dry_run: bool,
        /// Act whatever this node's CARP state (for operators)
        #[arg(long)]
        force: bool,
    },
    /// Check every VHID this node is MASTER of and repair what drifted
    Reconcile {
        /// Report what would be repaired; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Per VHID: CARP state, actions, what AWS points at now, last writer
    Status,
    /// Check IMDS, credentials, region, endpoint, IAM (DryRun) and config
    Doctor,
    /// ENI-backed interfaces: device, ENI id, subnets, IPv4s and IPv6s (for the GUI)
    Interfaces,
    /// Map an address into the local ENI's subnet (for XMLRPC sync)
    MapIp {
        /// pfSense interface key (wan, lan, opt1) of the local ENI
        #[arg(long, value_name = "IF")]
        interface: String,
        /// The subnet the address comes from (the peer's ENI subnet)
        #[arg(long, value_name = "CIDR")]
        from_subnet: String,
        /// The address to map
        ip: String,
    },
    /// Check config.xml's awsha settings; no network
    Validate,
    /// The runs that changed or failed something, oldest first (newest 500)
    History,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Failover { .. } => "failover",
            Command::Reconcile { .. } => "reconcile",
            Command::Status => "status",
            Command::Doctor => "doctor",
            Command::Interfaces => "interfaces",
            Command::MapIp { .. } => "map-ip",
            Command::Validate => "validate",
            Command::History => "history",
        }
    }
}

/// The command word in raw arguments, for the JSON error object when clap itself refuses them.
pub fn guess_command(args: &[String]) -> &'static str {
    const NAMES: [&str; 8] = [
        "failover",
        "reconcile",
        "status",
        "doctor",
        "interfaces",
        "map-ip",
        "validate",
        "history",
    ];
    args.iter()
        .skip(1)
        .find_map(|a| NAMES.iter().find(|n| **n == a.as_str()).copied())
        .unwrap_or("awsha")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let a = parse(&["awsha", "--json", "reconcile"]);
        let b = parse(&["awsha", "reconcile", "--json"]);
        assert!(a.json && b.json);
        let c = parse(&["awsha", "failover", "--dry-run", "wan@1", "--deadline", "5", "-vv"]);
        assert!(matches!(c.command, Command::Failover { ref vhid, dry_run: true, force: false } if vhid == "wan@1"));
        assert_eq!(c.deadline.as_deref(), Some("5"));
        assert_eq!(c.verbose, 2);
        let d = parse(&[
            "awsha",
            "map-ip",
            "10.0.1.10",
            "--interface",
            "wan",
            "--from-subnet",
            "10.0.1.0/24",
        ]);
        assert!(matches!(d.command, Command::MapIp { .. }));
    }

    #[test]
    fn guesses_the_command_for_error_reports() {
        let args: Vec<String> = ["awsha", "--json", "failover"].iter().map(|s| s.to_string()).collect();
        assert_eq!(guess_command(&args), "failover");
        assert_eq!(guess_command(&["awsha".to_string()]), "awsha");
    }
}
