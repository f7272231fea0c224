//! Time formatting shared by the ladder and explain outputs, kept in one place so both agree.

use std::time::Duration;

/// Seconds with microsecond precision, e.g. `0.212300`, for the ladder's time column.
pub(crate) fn secs6(d: Duration) -> String {
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// Seconds with nanosecond precision, as Wireshark's `frame.time_relative` shows them.
pub(crate) fn secs9(d: Duration) -> String {
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// A short human duration: `850 µs`, `212 ms`, `1.50 s`, `3 min 20 s`.
pub(crate) fn human(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else if us < 60_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else {
        let s = d.as_secs();
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// Absolute UTC time from a Unix-epoch duration, `2024-05-01 12:00:00.000000000 UTC`.
pub(crate) fn utc(d: Duration) -> String {
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}.{:09} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(Duration::ZERO), "1970-01-01 00:00:00.000000000 UTC");
        assert_eq!(utc(Duration::from_secs(1_700_000_000)), "2023-11-14 22:13:20.000000000 UTC");
        assert_eq!(human(Duration::from_millis(212)), "212 ms");
        assert_eq!(human(Duration::from_micros(850)), "850 µs");
        assert_eq!(human(Duration::from_millis(1500)), "1.50 s");
    }
}
