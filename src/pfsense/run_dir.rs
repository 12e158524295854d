//! The run directory: one flock(2) lock per VHID (docs/contracts.md §10), the takeover marker that
//! reconcile's rules compare against (§9.2), and the history of runs that changed or failed
//! something (§13).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::base::time::{Millis, format_rfc3339_millis, parse_rfc3339};
use crate::pfsense::vhid::file_stem;

/// Held while a process acts for a VHID; the kernel drops it when the process exits or dies, so a
/// crash never blocks the next run.
pub struct VhidLock {
    _file: File,
}

pub fn lock_path(run_dir: &Path, vhid: &str) -> PathBuf {
    run_dir.join(format!("awsha.{}.lock", file_stem(vhid)))
}

pub fn takeover_path(run_dir: &Path, vhid: &str) -> PathBuf {
    run_dir.join(format!("awsha.{}.takeover", file_stem(vhid)))
}

fn open(run_dir: &Path, vhid: &str) -> anyhow::Result<File> {
    open_lock_file(&lock_path(run_dir, vhid))
}

/// A lock file, created if missing and never truncated (its content does not matter; its flock
/// does).
fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("{}: cannot open lock file", path.display()))
}

/// Takes the lock if free; `Ok(None)` when another process holds it.
pub fn try_lock(run_dir: &Path, vhid: &str) -> anyhow::Result<Option<VhidLock>> {
    let file = open(run_dir, vhid)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(VhidLock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("{}: cannot lock", lock_path(run_dir, vhid).display())))
        }
    }
}

/// Waits for the lock until `deadline`; `Ok(None)` if it is still held then.
pub async fn lock_until(run_dir: &Path, vhid: &str, deadline: Instant) -> anyhow::Result<Option<VhidLock>> {
    loop {
        if let Some(lock) = try_lock(run_dir, vhid)? {
            return Ok(Some(lock));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        // Polling keeps the wait bounded by the deadline; 20 ms is far below an EC2 round trip.
        tokio::time::sleep(Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Records when `failover` took a VHID over. Written whole and renamed into place, so a reader
/// never sees half a time stamp.
pub fn write_takeover(run_dir: &Path, vhid: &str, at: Millis) -> anyhow::Result<()> {
    let path = takeover_path(run_dir, vhid);
    let tmp = path.with_extension(format!("takeover.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{}", format_rfc3339_millis(at))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("{}: cannot write takeover time", path.display()))
    })
}

pub fn read_takeover(run_dir: &Path, vhid: &str) -> Option<Millis> {
    let text = std::fs::read_to_string(takeover_path(run_dir, vhid)).ok()?;
    parse_rfc3339(text.trim())
}

/// The history file: one JSON object a line, oldest first.
pub fn history_path(run_dir: &Path) -> PathBuf {
    run_dir.join("awsha.history.jsonl")
}

/// How many runs the history keeps.
pub const HISTORY_LINES: usize = 500;
/// The file may grow this far past `HISTORY_LINES` before it is cut back: most runs then append a
/// line instead of rewriting a file of hundreds of reports.
const HISTORY_SLACK: usize = 50;

/// Appends one run (a JSON object on one line) to the history, keeping the newest
/// `HISTORY_LINES` (readers see no more; the file holds at most `HISTORY_SLACK` older lines).
/// Writers take turns under an exclusive flock on `awsha.history.lock` and readers take it shared,
/// so a reader never sees half a line; cutting back rewrites the newest lines to a temporary file
/// renamed into place.
pub fn append_history(run_dir: &Path, line: &str) -> anyhow::Result<()> {
    debug_assert!(!line.contains('\n'));
    let lock = history_lock(run_dir)?;
    lock.lock()
        .with_context(|| format!("{}: cannot lock", history_lock_path(run_dir).display()))?;
    let path = history_path(run_dir);
    let fail =
        |e: std::io::Error| anyhow::Error::new(e).context(format!("{}: cannot write the history", path.display()));
    let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(fail)?;
    file.write_all(format!("{line}\n").as_bytes()).map_err(fail)?;
    let lines = read_lines(&path)?;
    if lines.len() <= HISTORY_LINES + HISTORY_SLACK {
        return Ok(());
    }
    let keep = &lines[lines.len() - HISTORY_LINES..];
    let tmp = path.with_extension(format!("jsonl.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{}\n", keep.join("\n")).as_bytes())?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

fn history_lock_path(run_dir: &Path) -> PathBuf {
    run_dir.join("awsha.history.lock")
}

fn history_lock(run_dir: &Path) -> anyhow::Result<File> {
    open_lock_file(&history_lock_path(run_dir))
}

/// The history's newest `HISTORY_LINES` lines, oldest first; none when there is no history yet.
pub fn read_history(run_dir: &Path) -> anyhow::Result<Vec<String>> {
    let lock = history_lock(run_dir)?;
    lock.lock_shared()
        .with_context(|| format!("{}: cannot lock", history_lock_path(run_dir).display()))?;
    let mut lines = read_lines(&history_path(run_dir))?;
    let extra = lines.len().saturating_sub(HISTORY_LINES);
    lines.drain(..extra);
    Ok(lines)
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("{}: cannot read", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("awsha-lock-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = temp_dir("excl");
        let first = try_lock(&dir, "wan@1").unwrap().expect("free");
        assert!(try_lock(&dir, "wan@1").unwrap().is_none(), "second holder refused");
        assert!(
            try_lock(&dir, "lan@2").unwrap().is_some(),
            "other VHIDs are independent"
        );
        drop(first);
        assert!(try_lock(&dir, "wan@1").unwrap().is_some());
        assert!(dir.join("awsha.wan_1.lock").exists());
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_gives_up_at_the_deadline() {
        let dir = temp_dir("wait");
        let _held = try_lock(&dir, "wan@1").unwrap().unwrap();
        let started = Instant::now();
        let got = lock_until(&dir, "wan@1", started + Duration::from_millis(150))
            .await
            .unwrap();
        assert!(got.is_none());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_millis(200),
            "{waited:?}"
        );
    }

    #[test]
    fn history_keeps_whole_lines_and_the_newest_500() {
        let dir = temp_dir("history");
        assert!(read_history(&dir).unwrap().is_empty());
        let total = HISTORY_LINES + HISTORY_SLACK + 30;
        for i in 0..total {
            append_history(&dir, &format!("{{\"n\":{i}}}")).unwrap();
        }
        let lines = read_history(&dir).unwrap();
        assert_eq!(lines.len(), HISTORY_LINES);
        assert_eq!(lines[0], format!("{{\"n\":{}}}", total - HISTORY_LINES));
        assert_eq!(lines.last().unwrap(), &format!("{{\"n\":{}}}", total - 1));
        let on_disk = std::fs::read_to_string(history_path(&dir)).unwrap();
        assert!(on_disk.ends_with("}\n"));
        assert!(on_disk.lines().count() <= HISTORY_LINES + HISTORY_SLACK, "cut back");
    }

    #[test]
    fn takeover_round_trips() {
        let dir = temp_dir("takeover");
        assert_eq!(read_takeover(&dir, "wan@1"), None);
        write_takeover(&dir, "wan@1", 1_795_687_200_123).unwrap();
        assert_eq!(read_takeover(&dir, "wan@1"), Some(1_795_687_200_123));
        assert_eq!(
            std::fs::read_to_string(dir.join("awsha.wan_1.takeover")).unwrap(),
            "2026-11-26T10:00:00.123Z\n"
        );
    }
}
