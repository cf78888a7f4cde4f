//! Reading a setting's text (durations, sizes, networks) and writing a
//! default the way its flag shows it (`30s`, `250ms`, `1280MiB`).

use std::time::Duration;

/// A duration above zero, like `5s` or `1500ms`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like 5s or 1500ms: {e}"))?;
    if d.is_zero() {
        return Err("the duration must be above zero".into());
    }
    Ok(d)
}

/// A size above zero: bytes, or a number with `KiB`, `MiB` or `GiB`.
pub(super) fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => {
            return Err(format!(
                "`{s}` is not a size like 268435456, 256MiB or 1GiB"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 268435456, 256MiB or 1GiB"))?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err("the size must be above zero".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{s}` is too large")),
    }
}

/// A CIDR, or a single address (as its /32 or /128).
pub(super) fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or a CIDR like 10.0.0.0/8"))
}

/// A default duration as its flag shows it: whole seconds as `30s`, else
/// milliseconds (`250ms`); [`parse_duration`] reads it back.
pub(super) fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// A default size as its flag shows it: in the largest unit that divides
/// it (`1280MiB`); [`parse_bytes`] reads it back.
pub(super) fn bytes_text(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_show_in_their_largest_unit() {
        for bad in ["0", "12XB", "MiB", "99999999999GiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        for (bytes, shown) in [(1280 << 20, "1280MiB"), (1 << 30, "1GiB"), (1000, "1000")] {
            assert_eq!(bytes_text(bytes), shown);
            assert_eq!(parse_bytes(shown), Ok(bytes));
        }
    }

    #[test]
    fn durations_parse_and_show_as_seconds_or_milliseconds() {
        for bad in ["soon", "0s", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for (d, shown) in [
            (Duration::from_secs(60), "60s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
        ] {
            assert_eq!(duration_text(d), shown);
            assert_eq!(parse_duration(shown), Ok(d));
        }
    }

    #[test]
    fn a_net_is_a_cidr_or_an_address() {
        assert_eq!(parse_net(" 10.0.0.0/8 ").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert!(parse_net("10.0.0.0/33").is_err());
    }
}
