//! Diagnostics: stderr for the operator at the shell, syslog for pfSense's log (program name
//! `awsha`, so a package `<logging>` entry can route it). Never stdout: that is the report's.

use std::sync::atomic::{AtomicI8, Ordering};

static VERBOSITY: AtomicI8 = AtomicI8::new(0);

/// Syslog severities awsha uses; also a notice's level in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// -q → -1 (errors only), default 0 (warnings), -v → 1 (info), -vv → 2 (debug).
pub fn set_verbosity(v: i8) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

fn shown_on_stderr(level: Level) -> bool {
    let v = VERBOSITY.load(Ordering::Relaxed);
    match level {
        Level::Error => true,
        Level::Warning => v >= 0,
        Level::Info => v >= 1,
        Level::Debug => v >= 2,
    }
}

pub fn log(level: Level, message: &str) {
    if shown_on_stderr(level) {
        eprintln!("awsha: {}: {message}", level.as_str());
    }
    if level <= Level::Info {
        syslog(level, message);
    }
}

pub fn error(message: &str) {
    log(Level::Error, message)
}
pub fn warn(message: &str) {
    log(Level::Warning, message)
}
pub fn info(message: &str) {
    log(Level::Info, message)
}
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Best effort: one datagram to the local syslog socket (FreeBSD `/var/run/log`, Linux
/// `/dev/log`) in RFC 3164 form; nothing happens where there is none. Facility user (1).
fn syslog(level: Level, message: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::net::UnixDatagram;
        if std::env::var_os("AWSHA_NO_SYSLOG").is_some() {
            return;
        }
        let path = ["/var/run/log", "/dev/log"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(path) = path else { return };
        let Ok(sock) = UnixDatagram::unbound() else {
            return;
        };
        let _ = sock.set_write_timeout(Some(std::time::Duration::from_millis(100)));
        let pri = 8 + level as u8;
        let line = crate::base::text::clip(message, 900);
        let _ = sock.send_to(format!("<{pri}>awsha[{}]: {line}", std::process::id()).as_bytes(), path);
    }
}
