//! Bounds on what one rendering may cost. Templates come from API users and run on the
//! shared server for every event, so neither their output nor the lists they build may
//! grow without limit.

use std::collections::HashMap;
use std::io::{self, Write};

use tera::{Error, Value, from_value};

/// Largest output one template may render (4 MiB): far beyond any payload, URL or
/// message, small enough that a runaway loop fails fast instead of eating memory.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// Most items `range` may produce. Tera's own has no limit (and loops forever on
/// `step_by=0`).
pub const MAX_RANGE_ITEMS: usize = 10_000;

/// Collects rendered output and fails once it passes [`MAX_OUTPUT_BYTES`]; tera stops
/// rendering at the first failed write.
#[derive(Default)]
pub struct CappedOutput(pub Vec<u8>);

impl Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT_BYTES {
            return Err(io::Error::other(format!(
                "the output is larger than {} MiB; check the template for a runaway loop",
                MAX_OUTPUT_BYTES / (1024 * 1024)
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn count_arg(args: &HashMap<String, Value>, name: &str) -> tera::Result<Option<usize>> {
    args.get(name)
        .map(|v| {
            from_value::<usize>(v.clone()).map_err(|_| {
                Error::msg(format!(
                    "Function `range` received {name}={v} but `{name}` can only be a whole number"
                ))
            })
        })
        .transpose()
}

/// Tera's `range(start=0, end, step_by=1)`, refusing a zero step and more than
/// [`MAX_RANGE_ITEMS`] items.
pub fn range(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let start = count_arg(args, "start")?.unwrap_or(0);
    let step = count_arg(args, "step_by")?.unwrap_or(1);
    let end = count_arg(args, "end")?
        .ok_or_else(|| Error::msg("Function `range` was called without an `end` argument"))?;
    if start > end {
        return Err(Error::msg(
            "Function `range` was called with a `start` argument greater than the `end` one",
        ));
    }
    if step == 0 {
        return Err(Error::msg(
            "Function `range` needs a `step_by` of at least 1",
        ));
    }
    let items = (end - start).div_ceil(step);
    if items > MAX_RANGE_ITEMS {
        return Err(Error::msg(format!(
            "Function `range` would make {items} items; the limit is {MAX_RANGE_ITEMS}"
        )));
    }
    Ok(Value::Array(
        (start..end).step_by(step).map(Value::from).collect(),
    ))
}
