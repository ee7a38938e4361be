//! Bounds on what one template may cost, in one place. Templates come from API users and
//! run on the shared server for every event, so their source, nesting, work, intermediate
//! values and output are all bounded; [`Limits::DEFAULT`] holds the numbers and
//! [`Bound`] names each one in errors.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Duration;

use tera::{Error, Value, from_value};

/// Every bound a template is held to. The defaults are far beyond what a payload, URL,
/// message or feed item needs and small enough that one user's template cannot stall or
/// starve the hub.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest template source accepted at save.
    pub max_source_bytes: usize,
    /// Deepest nesting of tags, brackets and expressions (the renderer recurses per level).
    pub max_depth: usize,
    /// Most operators in one tag (tera builds a left-deep tree from a chain of them).
    pub max_tag_operators: usize,
    /// Most variable reads, calls and filters in one expression (each may copy a value).
    pub max_expression_terms: usize,
    /// Work one rendering may do: one step per node run in a loop body, per call, per
    /// 4 KiB a call reads and per KiB it makes.
    pub max_steps: u64,
    /// Wall-clock bound on one rendering, checked as it runs.
    pub deadline: Duration,
    /// Largest value a `set`, filter or function may make.
    pub max_value_bytes: usize,
    /// Deepest value a `set`, filter or function may make.
    pub max_value_depth: usize,
    /// Total bytes of values one rendering may make (bounds the memory held by many
    /// variables, not only one).
    pub max_produced_bytes: usize,
    /// Largest output one template may render.
    pub max_output_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_source_bytes: 64 * 1024,
        max_depth: 64,
        max_tag_operators: 256,
        max_expression_terms: 32,
        max_steps: 1_000_000,
        // Unoptimised builds run tera about ten times slower; their deadline is longer so
        // that tests see the same bound broken as a release build would.
        deadline: Duration::from_millis(if cfg!(debug_assertions) {
            10_000
        } else {
            1_000
        }),
        max_value_bytes: 2 * 1024 * 1024,
        max_value_depth: 128,
        max_produced_bytes: 64 * 1024 * 1024,
        max_output_bytes: MAX_OUTPUT_BYTES,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A bound a rendering broke; [`Bound::describe`] says which, for the agent's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Work,
    Deadline,
    ValueSize,
    ValueDepth,
    Produced,
    Output,
}

impl Bound {
    pub fn describe(self, l: &Limits) -> String {
        match self {
            Bound::Work => format!(
                "the template did more than {} steps of work (loop iterations times the size of their body, and calls; template work limit)",
                l.max_steps
            ),
            Bound::Deadline => format!(
                "the template ran longer than {} ms (template time limit)",
                l.deadline.as_millis()
            ),
            Bound::ValueSize => format!(
                "the template made a value larger than {} KiB (template value size limit)",
                l.max_value_bytes / 1024
            ),
            Bound::ValueDepth => format!(
                "the template made a value nested deeper than {} levels (template value depth limit)",
                l.max_value_depth
            ),
            Bound::Produced => format!(
                "the template made more than {} MiB of values in one rendering (template memory limit)",
                l.max_produced_bytes / (1024 * 1024)
            ),
            Bound::Output => output_error(l.max_output_bytes),
        }
    }
}

/// Largest output one template may render (4 MiB): far beyond any payload, URL or
/// message, small enough that a runaway loop fails fast instead of eating memory.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// Most items `range` may produce. Tera's own has no limit (and loops forever on
/// `step_by=0`).
pub const MAX_RANGE_ITEMS: usize = 10_000;

fn output_error(max: usize) -> String {
    format!(
        "the output is larger than {} MiB; check the template for a runaway loop (template output limit)",
        max / (1024 * 1024)
    )
}

/// Collects rendered output and fails once it passes its cap; tera stops rendering at
/// the first failed write.
pub struct CappedOutput {
    pub bytes: Vec<u8>,
    max: usize,
    bound: Bound,
}

impl CappedOutput {
    pub fn new(max: usize) -> Self {
        CappedOutput {
            bytes: Vec::new(),
            max,
            bound: Bound::Output,
        }
    }

    /// A buffer for an intermediate value rather than the output.
    pub fn for_value(max: usize) -> Self {
        CappedOutput {
            bound: Bound::ValueSize,
            ..CappedOutput::new(max)
        }
    }
}

impl Default for CappedOutput {
    fn default() -> Self {
        CappedOutput::new(MAX_OUTPUT_BYTES)
    }
}

impl Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            let err = super::budget::note(self.bound);
            return Err(io::Error::other(err.to_string()));
        }
        self.bytes.extend_from_slice(buf);
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
