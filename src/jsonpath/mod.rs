//! Bounded JSONPath: the one way muninn evaluates a user-written JSONPath (a trigger
//! rule's `path`, a webhook agent's `payload_path`, ...). serde_json_path parses; this
//! module evaluates one selector at a time so every step is counted, and refuses a path
//! before it runs when its shape alone is absurd.
//!
//! The bounds, each named in its error: the number of values a path may select
//! ([`Limits::max_results`]), the values one evaluation may hold at once
//! ([`Limits::max_held`], its memory), and the work it may do ([`Limits::max_work`]:
//! values visited, filter tests, regex compilations). A value reached twice is returned
//! once (RFC 9535 would list it twice): that is what turns `$..*..*..*` from exponential
//! into linear work, and it never changes the first value, which is all muninn reads.

mod split;

use std::collections::HashSet;

use serde_json::Value;
use serde_json_path::JsonPath;

use split::FilterShape;

/// The bounds one path evaluation runs under. The defaults fit a laptop: at most a few
/// MiB and well under a second for any path on any event the hub accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Characters in the path's text.
    pub max_path_chars: usize,
    /// Descendant (`..`) segments in one path.
    pub max_descendant_segments: usize,
    /// Values the path may select.
    pub max_results: usize,
    /// Values held at once in one step's node list.
    pub max_held: usize,
    /// Units of work: a value visited or tested is 1, a regex compiled is `REGEX_WORK`.
    pub max_work: usize,
    /// Compiled size of a `match`/`search` regex, in bytes (regex crate's size limit).
    pub max_regex_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_path_chars: 1000,
            max_descendant_segments: 4,
            max_results: 10_000,
            max_held: 100_000,
            max_work: 1_000_000,
            max_regex_bytes: 32 * 1024,
        }
    }
}

/// What a `match(...)`/`search(...)` test costs: serde_json_path compiles the regex at
/// every test.
const REGEX_WORK: usize = 200;

/// A path refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("is not a valid JSONPath: {0}")]
    Syntax(String),
    #[error("is {0} characters long; at most {1} are allowed (JSONPath length limit)")]
    TooLong(usize, usize),
    #[error(
        "has {0} descendant (..) segments; at most {1} are allowed (JSONPath descendant limit)"
    )]
    TooManyDescendants(usize, usize),
    #[error("uses $ inside the filter {0:?}; only @ (the value tested) can be queried there")]
    RootInFilter(String),
    #[error(
        "uses a descendant segment (..) inside the filter {0:?}; use single steps such as @.a.b"
    )]
    DescendantInFilter(String),
    #[error("nests a filter inside the filter {0:?}; write one filter per segment")]
    NestedFilter(String),
    #[error("uses a list of selectors ([a,b]) inside the filter {0:?}; use one selector per step")]
    ListInFilter(String),
    #[error("calls {0}() in the filter {1:?} with a pattern that is not a quoted string")]
    RegexNotLiteral(String, String),
    #[error("has the regular expression {0:?}, larger than {1} bytes compiled: {2}")]
    RegexTooBig(String, usize, String),
}

/// A path stopped while it ran, naming the bound it hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("would select more than {0} values (JSONPath result limit)")]
    Results(usize),
    #[error("would hold more than {0} values at once (JSONPath memory limit)")]
    Held(usize),
    #[error("would take more than {0} steps (JSONPath work limit)")]
    Work(usize),
}

#[derive(Debug, Clone)]
struct Selector {
    path: JsonPath,
    filter: Option<FilterShape>,
}

#[derive(Debug, Clone)]
struct Segment {
    descendant: bool,
    selectors: Vec<Selector>,
}

/// A JSONPath checked against [`Limits`] and ready to run under them.
#[derive(Debug, Clone)]
pub struct BoundedPath {
    text: String,
    segments: Vec<Segment>,
    limits: Limits,
}

impl std::fmt::Display for BoundedPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl BoundedPath {
    /// A path as Huginn writes it: the leading `$` is optional (`data.items`, `.a`,
    /// `[0]`), under the default limits.
    pub fn parse_huginn(text: &str) -> Result<BoundedPath, PathError> {
        let p = text.trim();
        let full = if p.starts_with('$') {
            p.to_string()
        } else if p.starts_with('.') || p.starts_with('[') {
            format!("${p}")
        } else {
            format!("$.{p}")
        };
        BoundedPath::parse(&full, Limits::default())
    }

    /// A path in RFC 9535 syntax, checked against `limits`.
    pub fn parse(text: &str, limits: Limits) -> Result<BoundedPath, PathError> {
        let chars = text.chars().count();
        if chars > limits.max_path_chars {
            return Err(PathError::TooLong(chars, limits.max_path_chars));
        }
        JsonPath::parse(text).map_err(|e| PathError::Syntax(e.to_string()))?;
        let raw = split::segments(text)?;
        let descendants = raw.iter().filter(|s| s.descendant).count();
        if descendants > limits.max_descendant_segments {
            return Err(PathError::TooManyDescendants(
                descendants,
                limits.max_descendant_segments,
            ));
        }
        let mut segments = Vec::with_capacity(raw.len());
        for seg in raw {
            let mut selectors = Vec::with_capacity(seg.selectors.len());
            for sel in seg.selectors {
                let filter = if sel.starts_with("$[?") {
                    Some(split::filter_shape(&sel, limits.max_regex_bytes)?)
                } else {
                    None
                };
                let path = JsonPath::parse(&sel).map_err(|e| {
                    PathError::Syntax(format!("the selector {sel:?} could not be read: {e}"))
                })?;
                selectors.push(Selector { path, filter });
            }
            segments.push(Segment {
                descendant: seg.descendant,
                selectors,
            });
        }
        Ok(BoundedPath {
            text: text.to_string(),
            segments,
            limits,
        })
    }

    /// The path's text as given to [`BoundedPath::parse`].
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first value the path selects, if any.
    pub fn first<'v>(&self, root: &'v Value) -> Result<Option<&'v Value>, QueryError> {
        Ok(self.query(root)?.into_iter().next())
    }

    /// Every value the path selects, in document order of first selection.
    pub fn query<'v>(&self, root: &'v Value) -> Result<Vec<&'v Value>, QueryError> {
        let mut run = Run {
            limits: self.limits,
            work: 0,
        };
        let mut list = vec![root];
        for seg in &self.segments {
            list = if seg.descendant {
                run.descend(seg, &list)?
            } else {
                let mut out = Nodes::default();
                for node in &list {
                    run.apply(seg, node, &mut out)?;
                }
                out.list
            };
        }
        if list.len() > self.limits.max_results {
            return Err(QueryError::Results(self.limits.max_results));
        }
        Ok(list)
    }
}

/// One step's output: each value once, counted against the memory bound.
#[derive(Default)]
struct Nodes<'v> {
    list: Vec<&'v Value>,
    seen: HashSet<*const Value>,
}

/// The counters of one evaluation.
struct Run {
    limits: Limits,
    work: usize,
}

impl Run {
    fn spend(&mut self, units: usize) -> Result<(), QueryError> {
        self.work = self.work.saturating_add(units);
        if self.work > self.limits.max_work {
            return Err(QueryError::Work(self.limits.max_work));
        }
        Ok(())
    }

    fn push<'v>(&self, out: &mut Nodes<'v>, v: &'v Value) -> Result<(), QueryError> {
        if out.seen.insert(v as *const Value) {
            out.list.push(v);
            if out.list.len() > self.limits.max_held {
                return Err(QueryError::Held(self.limits.max_held));
            }
        }
        Ok(())
    }

    /// Applies a segment's selectors to one value's children.
    fn apply<'v>(
        &mut self,
        seg: &Segment,
        node: &'v Value,
        out: &mut Nodes<'v>,
    ) -> Result<(), QueryError> {
        for sel in &seg.selectors {
            self.spend(1)?;
            if let Some(shape) = sel.filter {
                self.spend_filter(shape, node)?;
            }
            let found = sel.path.query(node);
            self.spend(found.len())?;
            for v in found {
                self.push(out, v)?;
            }
        }
        Ok(())
    }

    /// Charges a filter's tests of `node`'s children before the crate runs them.
    fn spend_filter(&mut self, shape: FilterShape, node: &Value) -> Result<(), QueryError> {
        let tests = children(node).len();
        self.spend(tests.saturating_mul(1 + shape.regex_calls * REGEX_WORK))?;
        if shape.fan_out > 0 {
            // A wildcard or slice in the filter may walk each tested child's subtree.
            let mut stack = children(node);
            while let Some(v) = stack.pop() {
                self.spend(shape.fan_out)?;
                stack.extend(children(v));
            }
        }
        Ok(())
    }

    /// A descendant segment: the selectors applied to every value under each listed
    /// value (itself included), each subtree walked once however often it is listed.
    fn descend<'v>(
        &mut self,
        seg: &Segment,
        list: &[&'v Value],
    ) -> Result<Vec<&'v Value>, QueryError> {
        let mut out = Nodes::default();
        let mut visited: HashSet<*const Value> = HashSet::new();
        for &start in list {
            let mut stack = vec![start];
            while let Some(node) = stack.pop() {
                if !visited.insert(node as *const Value) {
                    continue;
                }
                self.spend(1)?;
                self.apply(seg, node, &mut out)?;
                let mut kids = children(node);
                kids.reverse();
                stack.extend(kids);
            }
        }
        Ok(out.list)
    }
}

fn children(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
