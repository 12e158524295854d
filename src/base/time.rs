//! Time stamps as awsha writes them in tags and marker files: RFC 3339, UTC, milliseconds
//! (`2026-11-26T10:00:00.123Z`). Calendar arithmetic and parsing are the `time` crate's (already
//! built for the AWS SDK); parsing takes any RFC 3339 time, because an operator may tag by hand.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch: the unit every time comparison in awsha uses.
pub type Millis = i64;

pub fn to_millis(t: SystemTime) -> Millis {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as Millis,
        Err(e) => -(e.duration().as_millis() as Millis),
    }
}

/// `2026-11-26T10:00:00.123Z`: always three fraction digits, which the tag schema fixes.
pub fn format_rfc3339_millis(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Any RFC 3339 time (`Z` or an offset, with or without a fraction, which is cut to
/// milliseconds); `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let t = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    Millis::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_known_instant() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        // 2026-11-26T10:00:00.123Z, computed independently with `date -u -d … +%s`.
        assert_eq!(format_rfc3339_millis(1_795_687_200_123), "2026-11-26T10:00:00.123Z");
        assert_eq!(format_rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn round_trips_every_day_for_decades() {
        let mut ms = 0;
        while ms < 4_102_444_800_000 {
            assert_eq!(parse_rfc3339(&format_rfc3339_millis(ms)), Some(ms));
            ms += 86_400_000 * 7 + 3_723_456;
        }
    }

    #[test]
    fn accepts_seconds_and_offsets_rejects_junk() {
        assert_eq!(parse_rfc3339("2026-11-26T10:00:00Z"), Some(1_795_687_200_000));
        assert_eq!(parse_rfc3339("2026-11-26T11:00:00.5+01:00"), Some(1_795_687_200_500));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-26T10:00:00",
            "2026-11-26T10:00:00.Z",
            "2026-11-26T1a:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
