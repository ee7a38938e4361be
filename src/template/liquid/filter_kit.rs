//! The plumbing every filter goes through. Our filters are plain functions over evaluated
//! arguments ([`Simple`]); the crate's standard filters are wrapped ([`Guarded`]). Both
//! charge the rendering's account per call and refuse a result past the value bound, so
//! a chain of filters in a loop cannot grow memory or time without limit.

use std::fmt;

use liquid_core::error::{Error, Result};
use liquid_core::parser::{FilterArguments, ParameterReflection};
use liquid_core::{Expression, Filter, FilterReflection, ParseFilter, Runtime, Value, ValueView};

use super::bounds;

/// A filter body: the input, the evaluated positional arguments, the runtime.
pub type FilterFn = fn(&dyn ValueView, &[Value], &dyn Runtime) -> Result<Value>;

/// A filter made from a function taking `min..=max` positional arguments.
#[derive(Clone)]
pub struct Simple {
    pub name: &'static str,
    pub min: usize,
    pub max: usize,
    pub f: FilterFn,
}

impl Simple {
    pub const fn new(name: &'static str, min: usize, max: usize, f: FilterFn) -> Self {
        Simple { name, min, max, f }
    }
}

impl FilterReflection for Simple {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        ""
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for Simple {
    fn parse(&self, mut arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        if let Some((name, _)) = arguments.keyword.next() {
            return Err(Error::with_msg(format!(
                "filter `{}` takes no named argument `{name}`",
                self.name
            )));
        }
        let args: Vec<Expression> = arguments.positional.by_ref().take(self.max + 1).collect();
        if args.len() < self.min || args.len() > self.max {
            let wanted = if self.min == self.max {
                format!("{}", self.min)
            } else {
                format!("{} to {}", self.min, self.max)
            };
            return Err(Error::with_msg(format!(
                "filter `{}` takes {wanted} argument(s), {} given",
                self.name,
                args.len()
            )));
        }
        Ok(Box::new(SimpleCall {
            name: self.name,
            f: self.f,
            args,
        }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct SimpleCall {
    name: &'static str,
    f: FilterFn,
    args: Vec<Expression>,
}

impl fmt::Display for SimpleCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        for (i, a) in self.args.iter().enumerate() {
            write!(f, "{}{a}", if i == 0 { ": " } else { ", " })?;
        }
        Ok(())
    }
}

impl Filter for SimpleCall {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        bounds::charge(1)?;
        let mut args = Vec::with_capacity(self.args.len());
        for a in &self.args {
            args.push(a.evaluate(runtime)?.into_owned());
        }
        let out = (self.f)(input, &args, runtime)?;
        bounds::admit(&out)?;
        Ok(out)
    }
}

/// One of the crate's standard filters, charged and bounded like ours.
#[derive(Clone)]
pub struct Guarded(pub Box<dyn ParseFilter>);

impl ParseFilter for Guarded {
    fn parse(&self, arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        Ok(Box::new(GuardedCall(self.0.parse(arguments)?)))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self.0.reflection()
    }
}

#[derive(Debug)]
struct GuardedCall(Box<dyn Filter>);

impl fmt::Display for GuardedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Filter for GuardedCall {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        bounds::charge(1)?;
        let out = self.0.evaluate(input, runtime)?;
        bounds::admit(&out)?;
        Ok(out)
    }
}

/// The input as Ruby's `to_s` gives it to a filter: nil is "", other values render.
pub fn text(v: &dyn ValueView) -> String {
    if v.is_nil() {
        String::new()
    } else {
        v.to_kstr().into_owned().to_string()
    }
}

/// The n-th argument as text ("" when absent or nil).
pub fn arg_text(args: &[Value], n: usize) -> String {
    args.get(n).map(|v| text(v)).unwrap_or_default()
}

pub fn string(s: impl Into<String>) -> Value {
    Value::scalar(s.into())
}
