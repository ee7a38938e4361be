//! The Liquid side of the template sandbox. The account (steps, deadline, first broken
//! bound) is the one tera templates use ([`crate::template::budget`]); this file charges
//! it from Liquid's filters, blocks and writers, measures Liquid values against the value
//! bounds, caps what a rendering writes, and checks a source's size and nesting before
//! the parser (which recurses per level) sees it.

use std::io::{self, Write};

use liquid_core::ValueView;
use liquid_core::error::{Error, Result};

use crate::template::budget;
use crate::template::limits::{Bound, Limits};

/// Charges `steps` of work to the rendering's account (and checks its deadline).
pub fn charge(steps: u64) -> Result<()> {
    budget::charge(steps).map_err(|e| Error::with_msg(e.to_string()))
}

/// Fails with the value-size bound when a value would be `projected` bytes.
pub fn precheck(projected: usize) -> Result<()> {
    budget::precheck(projected).map_err(|e| Error::with_msg(e.to_string()))
}

/// The size of a Liquid value (each item costs its slot), walked without recursion and
/// stopping as soon as it passes `max`.
pub fn size_of(v: &dyn ValueView, max: usize) -> usize {
    let mut size = 0usize;
    let mut stack: Vec<&dyn ValueView> = vec![v];
    while let Some(v) = stack.pop() {
        size += 32;
        if let Some(a) = v.as_array() {
            stack.extend(a.values());
        } else if let Some(o) = v.as_object() {
            for (k, i) in o.iter() {
                size += k.len();
                stack.push(i);
            }
        } else if let Some(s) = v.as_scalar() {
            size += s.to_kstr().len();
        }
        if size > max {
            return size;
        }
    }
    size
}

/// Checks a value a filter or tag made against the value bound and charges making it.
pub fn admit(v: &dyn ValueView) -> Result<()> {
    let max = budget::current_limits().max_value_bytes;
    let size = size_of(v, max);
    precheck(size)?;
    charge(1 + (size / 4096) as u64)
}

/// Collects rendered text up to a cap; every write is charged, so a writer also checks
/// the deadline.
pub struct CappedWriter {
    pub bytes: Vec<u8>,
    max: usize,
    bound: Bound,
}

impl CappedWriter {
    /// The rendering's output.
    pub fn output(limits: &Limits) -> Self {
        CappedWriter {
            bytes: Vec::new(),
            max: limits.max_output_bytes,
            bound: Bound::Output,
        }
    }

    /// An intermediate text (a capture, a block's body), held to the value bound.
    pub fn value() -> Self {
        CappedWriter {
            bytes: Vec::new(),
            max: budget::current_limits().max_value_bytes,
            bound: Bound::ValueSize,
        }
    }

    pub fn into_string(self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

impl Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            return Err(io::Error::other(budget::note(self.bound).to_string()));
        }
        budget::charge(1 + (buf.len() / 1024) as u64)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Tags that open a block closed by `end<name>`.
const BLOCKS: &[&str] = &[
    "if",
    "unless",
    "for",
    "case",
    "capture",
    "comment",
    "raw",
    "regex_replace",
    "regex_replace_first",
];

/// Bounds the source's size, block nesting and bracket nesting before parsing: the
/// parser recurses per level, and a stack overflow cannot be caught.
pub fn prescan(src: &str, limits: &Limits) -> std::result::Result<(), super::LiquidError> {
    if src.len() > limits.max_source_bytes {
        return Err(super::LiquidError::Limit(format!(
            "the template is {} bytes; the limit is {} (template size limit)",
            src.len(),
            limits.max_source_bytes
        )));
    }
    let too_deep = || {
        super::LiquidError::Limit(format!(
            "the template nests deeper than {} levels (template depth limit)",
            limits.max_depth
        ))
    };
    let b = src.as_bytes();
    let (mut blocks, mut i) = (0usize, 0usize);
    while i + 1 < b.len() {
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%') {
            i += 1;
            continue;
        }
        let tag = b[i + 1] == b'%';
        i += 2;
        let start = i;
        let (mut depth, mut quote) = (0usize, None::<u8>);
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'\'' || c == b'"' => quote = Some(c),
                None if c == b'[' || c == b'(' => depth += 1,
                None if c == b']' || c == b')' => depth = depth.saturating_sub(1),
                None if (c == b'}' || c == b'%') && b.get(i + 1) == Some(&b'}') => break,
                None => {}
            }
            if depth > limits.max_depth {
                return Err(too_deep());
            }
            i += 1;
        }
        if tag {
            let inner = String::from_utf8_lossy(&b[start..i.min(b.len())]);
            let word = inner
                .trim_start_matches('-')
                .split_whitespace()
                .next()
                .unwrap_or("");
            if BLOCKS.contains(&word) {
                blocks += 1;
            } else if word.starts_with("end") {
                blocks = blocks.saturating_sub(1);
            }
            if blocks > limits.max_depth {
                return Err(too_deep());
            }
        }
        i += 2;
    }
    Ok(())
}
