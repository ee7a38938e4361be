//! Ruby Liquid 5's arithmetic filters (`plus`, `minus`, `times`, `divided_by`, `modulo`),
//! which Huginn's templates lean on: operands go through `Utils.to_number`, so nil and
//! text that is no number count as 0 (`{{ memory.last | minus: price }}` on a first
//! event), `"12"` as 12 and `"1.5"` as a decimal. Whole numbers stay whole (integer
//! division floors, as Ruby's); where Ruby would grow a Bignum, the result becomes a
//! float instead of wrapping or failing.

use liquid_core::error::{Error, Result};
use liquid_core::{Runtime, Value, ValueView};

use super::filter_kit::Simple;

pub const FILTERS: &[Simple] = &[
    Simple::new("plus", 1, 1, plus),
    Simple::new("minus", 1, 1, minus),
    Simple::new("times", 1, 1, times),
    Simple::new("divided_by", 1, 1, divided_by),
    Simple::new("modulo", 1, 1, modulo),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn value(self) -> Value {
        match self {
            Num::Int(i) => Value::scalar(i),
            Num::Float(f) => Value::scalar(f),
        }
    }
}

/// Ruby Liquid's `Utils.to_number`.
fn to_num(v: &dyn ValueView) -> Num {
    let Some(s) = v.as_scalar() else {
        return Num::Int(0);
    };
    match v.type_name() {
        "whole number" => s.to_integer().map_or(Num::Int(0), Num::Int),
        "fractional number" => s.to_float().map_or(Num::Int(0), Num::Float),
        "string" => text_number(s.to_kstr().as_str()),
        _ => Num::Int(0),
    }
}

/// A decimal (`-1.5`) is a float; otherwise Ruby's `to_i`: a sign and the leading
/// digits, else 0.
fn text_number(s: &str) -> Num {
    let t = s.trim();
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    if let Some((whole, frac)) = unsigned.split_once('.')
        && !whole.is_empty()
        && !frac.is_empty()
        && whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return t.parse().map_or(Num::Int(0), Num::Float);
    }
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Num::Int(0);
    }
    let sign = if negative { -1 } else { 1 };
    match digits.parse::<i64>() {
        Ok(n) => Num::Int(sign * n),
        Err(_) => Num::Float(sign as f64 * digits.parse::<f64>().unwrap_or(0.0)),
    }
}

fn apply(
    input: &dyn ValueView,
    args: &[Value],
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Value> {
    let a = to_num(input);
    let b = args.first().map_or(Num::Int(0), |v| to_num(v));
    Ok(match (a, b) {
        (Num::Int(x), Num::Int(y)) => {
            int(x, y).map_or_else(|| Num::Float(float(x as f64, y as f64)), Num::Int)
        }
        _ => Num::Float(float(a.float(), b.float())),
    }
    .value())
}

fn plus(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    apply(input, args, i64::checked_add, |x, y| x + y)
}

fn minus(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    apply(input, args, i64::checked_sub, |x, y| x - y)
}

fn times(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    apply(input, args, i64::checked_mul, |x, y| x * y)
}

/// Whole numbers divide and floor (Ruby: `-7 / 2` is -4); by zero is Liquid's error.
fn divided_by(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    if is_zero(args) {
        return Err(Error::with_msg("Liquid error: divided by 0"));
    }
    apply(input, args, i64::checked_div_euclid_floor, |x, y| x / y)
}

/// Ruby's modulo: the result takes the divisor's sign.
fn modulo(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    if is_zero(args) {
        return Err(Error::with_msg("Liquid error: divided by 0"));
    }
    apply(input, args, ruby_mod, |x, y| x - y * (x / y).floor())
}

fn is_zero(args: &[Value]) -> bool {
    args.first().map_or(Num::Int(0), |v| to_num(v)).float() == 0.0
}

trait FloorDiv {
    fn checked_div_euclid_floor(self, rhs: i64) -> Option<i64>;
}

impl FloorDiv for i64 {
    fn checked_div_euclid_floor(self, rhs: i64) -> Option<i64> {
        let q = self.checked_div(rhs)?;
        Some(if (self % rhs != 0) && ((self < 0) != (rhs < 0)) {
            q - 1
        } else {
            q
        })
    }
}

fn ruby_mod(x: i64, y: i64) -> Option<i64> {
    let r = x.checked_rem(y)?;
    Some(if r != 0 && ((r < 0) != (y < 0)) {
        r + y
    } else {
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_numbers_read_as_ruby_to_i_and_decimals() {
        assert_eq!(text_number("12"), Num::Int(12));
        assert_eq!(text_number("12abc"), Num::Int(12));
        assert_eq!(text_number(" -3 "), Num::Int(-3));
        assert_eq!(text_number("abc"), Num::Int(0));
        assert_eq!(text_number(""), Num::Int(0));
        assert_eq!(text_number("1.5"), Num::Float(1.5));
        assert_eq!(text_number("-0.25"), Num::Float(-0.25));
    }

    #[test]
    fn floor_division_and_modulo_follow_ruby() {
        assert_eq!(7i64.checked_div_euclid_floor(2), Some(3));
        assert_eq!((-7i64).checked_div_euclid_floor(2), Some(-4));
        assert_eq!(7i64.checked_div_euclid_floor(-2), Some(-4));
        assert_eq!(ruby_mod(-7, 3), Some(2));
        assert_eq!(ruby_mod(7, -3), Some(-2));
        assert_eq!(i64::MIN.checked_div_euclid_floor(-1), None);
    }
}

#[cfg(test)]
mod render_tests {
    use serde_json::json;

    use crate::template::liquid::tests::render;

    fn text(src: &str, vars: serde_json::Value) -> String {
        match render(src, vars) {
            Ok(serde_json::Value::String(s)) => s,
            other => format!("<{other:?}>"),
        }
    }

    #[test]
    fn arithmetic_reads_operands_as_ruby_liquid_does() {
        let cases = [
            // Huginn's ChangeDetector example on a first event: memory is empty.
            ("{{ missing | minus: price }}", json!({"price": 5}), "-5"),
            ("{{ price | minus: missing }}", json!({"price": 5}), "5"),
            ("{{ '12' | plus: 3 }}", json!({}), "15"),
            ("{{ 'abc' | plus: 1 }}", json!({}), "1"),
            ("{{ '1.5' | plus: 1 }}", json!({}), "2.5"),
            ("{{ 7 | divided_by: 2 }}", json!({}), "3"),
            ("{{ -7 | divided_by: 2 }}", json!({}), "-4"),
            ("{{ 7 | divided_by: 2.0 }}", json!({}), "3.5"),
            ("{{ -7 | modulo: 3 }}", json!({}), "2"),
            ("{{ 3 | times: 4 }}", json!({}), "12"),
            ("{{ true | plus: 1 }}", json!({}), "1"),
        ];
        for (src, vars, want) in cases {
            assert_eq!(text(src, vars), want, "{src}");
        }
    }

    #[test]
    fn overflow_becomes_a_float_and_zero_division_is_an_error() {
        let big = text("{{ 9223372036854775807 | plus: 1 }}", json!({}));
        assert!(big.parse::<f64>().is_ok_and(|f| f > 9.2e18), "{big}");
        let e = render("{{ 1 | divided_by: 0 }}", json!({})).unwrap_err();
        assert!(e.contains("divided by 0"), "{e}");
        let e = render("{{ 1 | modulo: nothing }}", json!({})).unwrap_err();
        assert!(e.contains("divided by 0"), "{e}");
    }
}
