//! Exact one-decimal numbers.
//!
//! The export writes temperatures with one decimal. Comparing them as floats gets bounds wrong
//! (`10.3 - 0.2` is `10.100000000000001` in binary floating point, so a Low Temperature of exactly
//! 10.1 falls outside the band). Every value is therefore held as an integer count of tenths.

use std::fmt;

/// A number with at most one decimal, stored as an integer count of tenths.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Tenths(pub i32);

/// Why a field could not be read as a one-decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenthsError {
    /// Empty field.
    Empty,
    /// A character that is not a digit, sign or decimal point.
    NotANumber,
    /// More than one digit after the decimal point: cannot be held exactly.
    TooPrecise,
    /// More digits than any temperature needs.
    OutOfRange,
}

impl fmt::Display for TenthsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TenthsError::Empty => "is empty",
            TenthsError::NotANumber => "is not a number",
            TenthsError::TooPrecise => "has more than one decimal place",
            TenthsError::OutOfRange => "is out of range",
        })
    }
}

/// Largest magnitude accepted, in tenths; far beyond any weather value, small enough that sums of
/// billions of readings fit in an `i64`.
const MAX_ABS: i64 = 1_000_000;

impl Tenths {
    /// Parses `-12.3`, `16`, `+0.5`, `.5` or `7.` from raw bytes without allocating.
    ///
    /// Surrounding spaces are tolerated because some exports pad fields.
    pub fn parse(bytes: &[u8]) -> Result<Tenths, TenthsError> {
        let bytes = trim_spaces(bytes);
        let (negative, digits) = match bytes.first() {
            None => return Err(TenthsError::Empty),
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            Some(_) => (false, bytes),
        };
        let (int_part, frac_part) = match memchr::memchr(b'.', digits) {
            Some(dot) => (&digits[..dot], &digits[dot + 1..]),
            None => (digits, &digits[digits.len()..]),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(TenthsError::NotANumber);
        }
        let mut value: i64 = 0;
        for &b in int_part {
            value = value * 10 + digit(b)?;
            if value > MAX_ABS {
                return Err(TenthsError::OutOfRange);
            }
        }
        value *= 10;
        match frac_part {
            [] => {}
            [d] => value += digit(*d)?,
            [d, rest @ ..] => {
                digit(*d)?;
                for &b in rest {
                    if digit(b)? != 0 {
                        return Err(TenthsError::TooPrecise);
                    }
                }
                value += digit(*d)?;
            }
        }
        if value > MAX_ABS {
            return Err(TenthsError::OutOfRange);
        }
        Ok(Tenths(if negative { -value } else { value } as i32))
    }

    /// Converts a configured float (TOML has no decimal type) to tenths, refusing values that are
    /// not exact in tenths such as `0.25`.
    pub fn from_f64(value: f64) -> Option<Tenths> {
        let scaled = value * 10.0;
        let rounded = scaled.round();
        let exact = (scaled - rounded).abs() < 1e-6 && rounded.abs() <= MAX_ABS as f64;
        exact.then_some(Tenths(rounded as i32))
    }

    /// The value as a float, only for JSON output where readers expect a number.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

fn digit(b: u8) -> Result<i64, TenthsError> {
    if b.is_ascii_digit() {
        Ok(i64::from(b - b'0'))
    } else {
        Err(TenthsError::NotANumber)
    }
}

/// Strips ASCII spaces and tabs at both ends of a field.
pub fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{}", abs / 10, abs % 10)
    }
}

/// Divides `num` by `den` (den > 0) and rounds half away from zero: the rounding a person doing
/// the arithmetic by hand expects, applied to exact rationals so no float error creeps in.
pub fn div_round(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

/// Formats the exact rational `num / den` with `decimals` places, rounding half away from zero.
pub fn format_ratio(num: i128, den: i128, decimals: u32) -> String {
    let scale = 10i128.pow(decimals);
    let scaled = div_round(num * scale, den);
    let sign = if scaled < 0 { "-" } else { "" };
    let abs = scaled.unsigned_abs();
    let scale = scale as u128;
    if decimals == 0 {
        format!("{sign}{abs}")
    } else {
        let width = decimals as usize;
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_export_spellings() {
        assert_eq!(Tenths::parse(b"16"), Ok(Tenths(160)));
        assert_eq!(Tenths::parse(b"15.9"), Ok(Tenths(159)));
        assert_eq!(Tenths::parse(b"-2.5"), Ok(Tenths(-25)));
        assert_eq!(Tenths::parse(b"-0.1"), Ok(Tenths(-1)));
        assert_eq!(Tenths::parse(b" 7.0 "), Ok(Tenths(70)));
        assert_eq!(Tenths::parse(b".5"), Ok(Tenths(5)));
        assert_eq!(Tenths::parse(b"10.10"), Ok(Tenths(101)));
    }

    #[test]
    fn rejects_what_is_not_exact() {
        assert_eq!(Tenths::parse(b""), Err(TenthsError::Empty));
        assert_eq!(Tenths::parse(b"---"), Err(TenthsError::NotANumber));
        assert_eq!(Tenths::parse(b"abc"), Err(TenthsError::NotANumber));
        assert_eq!(Tenths::parse(b"-"), Err(TenthsError::NotANumber));
        assert_eq!(Tenths::parse(b"."), Err(TenthsError::NotANumber));
        assert_eq!(Tenths::parse(b"1.25"), Err(TenthsError::TooPrecise));
        assert_eq!(Tenths::parse(b"1e5"), Err(TenthsError::NotANumber));
        assert_eq!(Tenths::parse(b"99999999999"), Err(TenthsError::OutOfRange));
    }

    #[test]
    fn config_floats_convert_exactly() {
        assert_eq!(Tenths::from_f64(10.3), Some(Tenths(103)));
        assert_eq!(Tenths::from_f64(0.2), Some(Tenths(2)));
        assert_eq!(Tenths::from_f64(-22.3), Some(Tenths(-223)));
        assert_eq!(Tenths::from_f64(0.25), None);
    }

    #[test]
    fn the_float_mistake_this_type_avoids() {
        let (centre, tol, low) = (Tenths(103), Tenths(2), Tenths::parse(b"10.1").unwrap());
        assert!(low.0 >= centre.0 - tol.0);
        let (c, t) = (std::hint::black_box(10.3_f64), std::hint::black_box(0.2_f64));
        assert!(10.1_f64 < c - t, "floats put 10.1 outside 10.3 ± 0.2");
    }

    #[test]
    fn display_and_rounding() {
        assert_eq!(Tenths(-5).to_string(), "-0.5");
        assert_eq!(Tenths(160).to_string(), "16.0");
        assert_eq!(format_ratio(2208, 100, 2), "22.08");
        assert_eq!(format_ratio(1, 8, 2), "0.13");
        assert_eq!(format_ratio(-1, 8, 2), "-0.13");
        assert_eq!(format_ratio(-1, 3, 2), "-0.33");
        assert_eq!(format_ratio(-1, 1000, 2), "0.00");
        assert_eq!(format_ratio(7, 2, 0), "4");
    }
}
