//! Byte sizes as people type them (`64KiB`, `1MiB`, `4MB`), shared by configuration values,
//! command-line flags and fault specs; a leaf module, so none of them depends on another for it.

/// Parses `1048576`, `64KiB`, `1MiB`, `2GiB`, `4MB`, `10kb` into bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("4MB"), Some(4_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("lots"), None);
    }
}
