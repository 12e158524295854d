//! What a run needs, resolved once: command line first, then the environment, then defaults
//! (docs/contracts.md §2.5). config.xml's own settings (endpoint, region) come after these; the
//! commands that talk to AWS apply them (`core::node`).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Cli;

#[derive(Clone, Debug)]
pub struct Settings {
    pub config_path: PathBuf,
    pub ifconfig: String,
    pub run_dir: PathBuf,
    pub deadline: Duration,
    pub grace: Duration,
    pub json: bool,
    /// `AWS_REGION`: beats config.xml's region and IMDS.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL_EC2`, else `AWS_ENDPOINT_URL`: beats config.xml's endpoint.
    pub endpoint: Option<String>,
}

/// Reads an environment variable through a closure so tests need not touch the process
/// environment (unsafe to set in edition 2024).
pub fn resolve(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
    let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
    let deadline = match (&cli.deadline, nonempty("AWSHA_DEADLINE")) {
        (Some(v), _) => seconds(v, "--deadline")?,
        (None, Some(v)) => seconds(&v, "AWSHA_DEADLINE")?,
        (None, None) => Duration::from_secs(30),
    };
    if deadline.is_zero() {
        anyhow::bail!("the deadline must be more than 0 seconds");
    }
    let grace = match nonempty("AWSHA_GRACE") {
        Some(v) => seconds(&v, "AWSHA_GRACE")?,
        None => Duration::from_secs(15),
    };
    Ok(Settings {
        config_path: cli
            .config
            .clone()
            .or_else(|| nonempty("AWSHA_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/conf/config.xml")),
        ifconfig: nonempty("AWSHA_IFCONFIG").unwrap_or_else(|| "/sbin/ifconfig".into()),
        run_dir: nonempty("AWSHA_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/run")),
        deadline,
        grace,
        json: cli.json,
        region: nonempty("AWS_REGION"),
        endpoint: nonempty("AWS_ENDPOINT_URL_EC2").or_else(|| nonempty("AWS_ENDPOINT_URL")),
    })
}

/// Whole or fractional seconds, 0 to one day.
fn seconds(text: &str, name: &str) -> anyhow::Result<Duration> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(anyhow::anyhow!(
            "{name}: \"{}\" is not a number of seconds (0 to 86400)",
            crate::base::text::shorten(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn with_env(args: &[&str], vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let cli = Cli::try_parse_from(args).unwrap();
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        resolve(&cli, &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_pfsense_paths() {
        let s = with_env(&["awsha", "validate"], &[]).unwrap();
        assert_eq!(s.config_path, PathBuf::from("/conf/config.xml"));
        assert_eq!(s.ifconfig, "/sbin/ifconfig");
        assert_eq!(s.run_dir, PathBuf::from("/var/run"));
        assert_eq!(s.deadline, Duration::from_secs(30));
        assert_eq!(s.grace, Duration::from_secs(15));
    }

    #[test]
    fn command_line_beats_environment() {
        let env = [
            ("AWSHA_CONFIG", "/env.xml"),
            ("AWSHA_DEADLINE", "7"),
            ("AWSHA_GRACE", "0"),
        ];
        let s = with_env(
            &["awsha", "--config", "/cli.xml", "--deadline", "2.5", "validate"],
            &env,
        )
        .unwrap();
        assert_eq!(s.config_path, PathBuf::from("/cli.xml"));
        assert_eq!(s.deadline, Duration::from_millis(2500));
        assert_eq!(s.grace, Duration::ZERO);
        let s = with_env(&["awsha", "validate"], &env).unwrap();
        assert_eq!(
            (s.config_path, s.deadline),
            (PathBuf::from("/env.xml"), Duration::from_secs(7))
        );
    }

    #[test]
    fn bad_numbers_name_their_source() {
        assert!(
            with_env(&["awsha", "--deadline", "soon", "validate"], &[])
                .unwrap_err()
                .to_string()
                .starts_with("--deadline")
        );
        assert!(
            with_env(&["awsha", "validate"], &[("AWSHA_DEADLINE", "-1")])
                .unwrap_err()
                .to_string()
                .starts_with("AWSHA_DEADLINE")
        );
        assert!(
            with_env(&["awsha", "validate"], &[("AWSHA_GRACE", "NaN")])
                .unwrap_err()
                .to_string()
                .starts_with("AWSHA_GRACE")
        );
        assert!(with_env(&["awsha", "--deadline", "0", "validate"], &[]).is_err());
    }
}
