//! The running account of one rendering: steps of work, bytes of values made, the
//! deadline, and which bound broke first. Tera renders synchronously on the calling
//! thread, so the account lives in a thread-local that [`run`] opens and always closes;
//! the registered functions and filters charge it as the template runs.

use std::cell::RefCell;
use std::time::Instant;

use tera::{Error, Value};

use super::limits::{Bound, Limits};

struct Account {
    limits: Limits,
    steps: u64,
    produced: usize,
    started: Instant,
    broken: Option<Bound>,
    charges: u32,
}

thread_local! {
    static ACCOUNT: RefCell<Option<Account>> = const { RefCell::new(None) };
}

/// Closes the account even if rendering unwinds, so the thread's next rendering starts
/// with a fresh one.
struct Close;

impl Drop for Close {
    fn drop(&mut self) {
        ACCOUNT.with(|a| a.borrow_mut().take());
    }
}

/// Runs `f` with a fresh account; returns its result and the first bound it broke.
pub fn run<T>(limits: Limits, f: impl FnOnce() -> T) -> (T, Option<Bound>) {
    ACCOUNT.with(|a| {
        *a.borrow_mut() = Some(Account {
            limits,
            steps: 0,
            produced: 0,
            started: Instant::now(),
            broken: None,
            charges: 0,
        })
    });
    let close = Close;
    let out = f();
    let broken = ACCOUNT.with(|a| a.borrow().as_ref().and_then(|a| a.broken));
    drop(close);
    (out, broken)
}

/// Records that `bound` broke (the first one wins) and returns the error that stops tera.
pub fn note(bound: Bound) -> Error {
    ACCOUNT.with(|a| {
        if let Some(a) = a.borrow_mut().as_mut() {
            a.broken.get_or_insert(bound);
            return Error::msg(bound.describe(&a.limits));
        }
        Error::msg(bound.describe(&Limits::DEFAULT))
    })
}

fn with_account<T>(f: impl FnOnce(&mut Account) -> Result<T, Bound>) -> tera::Result<T> {
    ACCOUNT.with(|a| match a.borrow_mut().as_mut() {
        Some(acc) => f(acc).map_err(|b| {
            acc.broken.get_or_insert(b);
            Error::msg(b.describe(&acc.limits))
        }),
        // Rendering always opens an account; a call outside one is refused rather than
        // run unbounded.
        None => Err(Error::msg("template functions run only inside a rendering")),
    })
}

/// Charges `steps` of work; checks the deadline every 64 charges (a clock read per
/// charge would cost more than most steps).
pub fn charge(steps: u64) -> tera::Result<()> {
    with_account(|a| {
        a.steps = a.steps.saturating_add(steps);
        if a.steps > a.limits.max_steps {
            return Err(Bound::Work);
        }
        a.charges = a.charges.wrapping_add(1);
        if a.charges.is_multiple_of(64) && a.started.elapsed() > a.limits.deadline {
            return Err(Bound::Deadline);
        }
        Ok(())
    })
}

/// The bound a value would break, measured without recursing past the depth limit or
/// walking past the size limit (so measuring costs at most the bound).
pub fn measure(v: &Value, limits: &Limits) -> (usize, Option<Bound>) {
    let mut size = 0usize;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > limits.max_value_depth {
            return (size, Some(Bound::ValueDepth));
        }
        // Every value costs its slot (a serde_json Value is 32 bytes) plus what it owns.
        size += 32;
        match v {
            Value::String(s) => size += s.len(),
            // Each child costs at least its slot: a huge container fails before its
            // children are queued.
            Value::Array(items) if size + 32 * items.len() > limits.max_value_bytes => {
                return (size, Some(Bound::ValueSize));
            }
            Value::Object(map) if size + 64 * map.len() > limits.max_value_bytes => {
                return (size, Some(Bound::ValueSize));
            }
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => {
                for (k, i) in map {
                    size += k.len() + 32;
                    stack.push((i, depth + 1));
                }
            }
            _ => {}
        }
        if size > limits.max_value_bytes {
            return (size, Some(Bound::ValueSize));
        }
    }
    (size, None)
}

/// Charges reading `v` (a step per 4 KiB, at most the value bound's worth): cheaper than
/// making bytes, so a loop may still ask a thousand-item list for its `length` per item.
pub fn charge_read(v: &Value) -> tera::Result<()> {
    let limits = current_limits();
    let (size, _) = measure(v, &limits);
    charge(1 + (size / 4096) as u64)
}

/// Checks a value a template made against the size and depth bounds and adds it to the
/// bytes this rendering made.
pub fn admit(v: &Value) -> tera::Result<()> {
    let limits = current_limits();
    let (size, broken) = measure(v, &limits);
    if let Some(b) = broken {
        return Err(note(b));
    }
    charge(1 + (size / 1024) as u64)?;
    with_account(|a| {
        a.produced = a.produced.saturating_add(size);
        if a.produced > a.limits.max_produced_bytes {
            return Err(Bound::Produced);
        }
        Ok(())
    })
}

/// Fails before a filter makes a value of `projected` bytes past the value bound.
pub fn precheck(projected: usize) -> tera::Result<()> {
    if projected > current_limits().max_value_bytes {
        return Err(note(Bound::ValueSize));
    }
    Ok(())
}

/// The time the rendering under way has left before its deadline (the whole default
/// deadline outside one): what a filter that waits (`uri_expand`) may spend.
pub fn remaining() -> std::time::Duration {
    ACCOUNT.with(|a| match a.borrow().as_ref() {
        Some(a) => a.limits.deadline.saturating_sub(a.started.elapsed()),
        None => Limits::DEFAULT.deadline,
    })
}

/// The limits of the rendering under way (the defaults outside one).
pub fn current_limits() -> Limits {
    ACCOUNT.with(|a| {
        a.borrow()
            .as_ref()
            .map(|a| a.limits)
            .unwrap_or(Limits::DEFAULT)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_broken_bound_is_reported_and_the_account_closes() {
        let limits = Limits {
            max_steps: 10,
            ..Limits::DEFAULT
        };
        let (res, broken) = run(limits, || {
            charge(5)?;
            charge(6)?;
            charge(1)
        });
        assert!(res.is_err());
        assert_eq!(broken, Some(Bound::Work));
        assert!(charge(1).is_err(), "no account outside a rendering");
    }

    #[test]
    fn measuring_stops_at_the_bounds() {
        let limits = Limits {
            max_value_bytes: 1000,
            max_value_depth: 3,
            ..Limits::DEFAULT
        };
        assert_eq!(measure(&json!("x"), &limits), (33, None));
        assert_eq!(
            measure(&json!([[["deep"]]]), &limits).1,
            Some(Bound::ValueDepth)
        );
        assert_eq!(
            measure(&json!("x".repeat(2000)), &limits).1,
            Some(Bound::ValueSize)
        );
    }
}
