//! Timestamps: Unix milliseconds and RFC 3339 (UTC, `Z`) text.

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

/// 0001-01-01T00:00:00Z, the first instant RFC 3339 can write.
pub(crate) const MIN_MS: i64 = -62_135_596_800_000;
/// 9999-12-31T23:59:59.999Z, the last.
pub(crate) const MAX_MS: i64 = 253_402_300_799_999;

/// `ms` if RFC 3339 can write it (years 1 to 9999).
pub(crate) fn in_range(ms: i64) -> Result<i64, String> {
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("{ms}: outside years 1-9999"))
    }
}

/// Unix milliseconds, or `YYYY-MM-DDTHH:MM:SS[.fff]Z`, within years 1 to
/// 9999.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return in_range(ms);
    }
    let bad = || format!("{s:?}: expected Unix milliseconds or YYYY-MM-DDTHH:MM:SSZ");
    let (main, frac_ms) = match s.strip_suffix('Z').and_then(|t| t.split_once('.')) {
        Some((main, frac))
            if !frac.is_empty() && frac.len() <= 3 && frac.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let scaled = format!("{frac:0<3}");
            (
                format!("{main}Z"),
                scaled.parse::<i64>().map_err(|_| bad())?,
            )
        }
        _ => (s.to_owned(), 0),
    };
    let b = main.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| main[r].parse::<i64>().map_err(|_| bad());
    let (y, m, d, hh, mm, ss) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    if y == 0 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    in_range(((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_print() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("2026-11-23T17:38:25Z").unwrap(),
            1_795_455_505_000
        );
        assert_eq!(
            parse_time("2026-11-23T17:38:25.5Z").unwrap(),
            1_795_455_505_500
        );
        assert!(parse_time("2026-13-01T00:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-544354091883373").is_err());
        assert!(parse_time("0000-01-01T00:00:00Z").is_err());
        assert_eq!(rfc3339(MIN_MS), "0001-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(parse_time("9999-12-31T23:59:59.999Z").unwrap(), MAX_MS);
        assert_eq!(rfc3339(1_795_455_505_123), "2026-11-23T17:38:25.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        for ms in [0, 951_782_400_000, 4_102_444_799_999, 1_795_455_505_123] {
            assert_eq!(parse_time(&rfc3339(ms)).unwrap(), ms);
        }
    }
}
