//! Variable lookup as Huginn's (lax) Liquid does it. The `liquid` crate is strict: a
//! missing variable or key is an error. Huginn renders it as nil (empty), and real
//! scenarios rely on that (`{{ item.enclosure.url }}` on an item without one). So the
//! root of every rendering is a [`Root`] of our own, and every scope our blocks open is a
//! [`Frame`]; both answer a missing path with nil instead of failing.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use liquid_core::error::{Error, Result};
use liquid_core::model::{KString, KStringCow, KStringRef, Object, ScalarCow, Value, ValueCow};
use liquid_core::runtime::{PartialStore, Registers};
use liquid_core::{Renderable, Runtime, ValueView};

/// Walks `path` inside `value`; nil where anything is missing. The last step may also
/// read a part of a `to_uri` result (a URL as text).
pub fn lax_find<'o>(value: &'o dyn ValueView, path: &[ScalarCow<'_>]) -> ValueCow<'o> {
    if let Some(found) = liquid_core::model::try_find(value, path) {
        return found;
    }
    if let Some((last, parent)) = path.split_last() {
        let parent = liquid_core::model::try_find(value, parent);
        let field = parent
            .filter(|p| p.type_name() == "string")
            .and_then(|p| super::uri_filters::uri_field(&p.to_kstr(), &last.to_kstr()));
        if let Some(v) = field {
            return ValueCow::Owned(v);
        }
    }
    ValueCow::Owned(Value::Nil)
}

/// `include` and `render` are not registered, so nothing asks for a partial; this answers
/// "none" if anything does.
#[derive(Debug)]
struct NoPartials;

impl PartialStore for NoPartials {
    fn contains(&self, _name: &str) -> bool {
        false
    }
    fn names(&self) -> Vec<&str> {
        Vec::new()
    }
    fn try_get(&self, _name: &str) -> Option<Arc<dyn Renderable>> {
        None
    }
    fn get(&self, name: &str) -> Result<Arc<dyn Renderable>> {
        Err(Error::with_msg(format!(
            "templates cannot include other templates ({name})"
        )))
    }
}

/// The outermost scope: the caller's variables, then what `assign`/`capture` set.
pub struct Root<'a> {
    vars: &'a Object,
    globals: RefCell<Object>,
    indexes: RefCell<Object>,
    registers: Registers,
}

impl<'a> Root<'a> {
    pub fn new(vars: &'a Object) -> Self {
        Root {
            vars,
            globals: RefCell::new(Object::new()),
            indexes: RefCell::new(Object::new()),
            registers: Registers::default(),
        }
    }
}

impl Runtime for Root<'_> {
    fn partials(&self) -> &dyn PartialStore {
        &NoPartials
    }

    fn name(&self) -> Option<KStringRef<'_>> {
        None
    }

    fn roots(&self) -> BTreeSet<KStringCow<'_>> {
        BTreeSet::new()
    }

    fn try_get(&self, path: &[ScalarCow<'_>]) -> Option<ValueCow<'_>> {
        self.get(path).ok()
    }

    fn get(&self, path: &[ScalarCow<'_>]) -> Result<ValueCow<'_>> {
        let Some(first) = path.first() else {
            return Ok(ValueCow::Owned(Value::Nil));
        };
        let key = first.to_kstr();
        {
            let globals = self.globals.borrow();
            if let Some(v) = globals.get(key.as_str()) {
                // An assigned value is copied out of its cell on every read; the copy is
                // charged so that reading a big one in a loop meets the work bound.
                let found = lax_find(v, &path[1..]).into_owned();
                let max = crate::template::budget::current_limits().max_value_bytes;
                super::bounds::charge(1 + (super::bounds::size_of(&found, max) / 4096) as u64)?;
                return Ok(ValueCow::Owned(found));
            }
        }
        match self.vars.get(key.as_str()) {
            Some(v) => Ok(lax_find(v, &path[1..])),
            None => Ok(ValueCow::Owned(Value::Nil)),
        }
    }

    fn set_global(&self, name: KString, val: Value) -> Option<Value> {
        self.globals.borrow_mut().insert(name, val)
    }

    fn set_index(&self, name: KString, val: Value) -> Option<Value> {
        self.indexes.borrow_mut().insert(name, val)
    }

    fn get_index<'b>(&'b self, name: &str) -> Option<ValueCow<'b>> {
        self.indexes
            .borrow()
            .get(name)
            .map(|v| ValueCow::Owned(v.clone()))
    }

    fn registers(&self) -> &Registers {
        &self.registers
    }
}

/// A scope our blocks open (a loop's item and `forloop`, a match's captures).
pub struct Frame<'p> {
    parent: &'p dyn Runtime,
    bindings: Vec<(&'p str, &'p dyn ValueView)>,
}

impl<'p> Frame<'p> {
    pub fn new(parent: &'p dyn Runtime, bindings: Vec<(&'p str, &'p dyn ValueView)>) -> Self {
        Frame { parent, bindings }
    }
}

impl Runtime for Frame<'_> {
    fn partials(&self) -> &dyn PartialStore {
        self.parent.partials()
    }

    fn name(&self) -> Option<KStringRef<'_>> {
        self.parent.name()
    }

    fn roots(&self) -> BTreeSet<KStringCow<'_>> {
        self.parent.roots()
    }

    fn try_get(&self, path: &[ScalarCow<'_>]) -> Option<ValueCow<'_>> {
        self.get(path).ok()
    }

    fn get(&self, path: &[ScalarCow<'_>]) -> Result<ValueCow<'_>> {
        if let Some(first) = path.first() {
            let key = first.to_kstr();
            // `forloop.parentloop` is the enclosing loop's `forloop`, read from the scope
            // that holds it rather than copied into every iteration.
            let parentloop = path
                .get(1)
                .is_some_and(|p| p.to_kstr().as_str() == "parentloop");
            if key.as_str() == "forloop"
                && parentloop
                && self.bindings.iter().any(|(n, _)| *n == "forloop")
            {
                let mut outer = vec![first.clone()];
                outer.extend(path[2..].iter().cloned());
                return self.parent.get(&outer);
            }
            // The innermost binding of a name wins, as in nested scopes.
            if let Some((_, v)) = self.bindings.iter().rev().find(|(n, _)| *n == key.as_str()) {
                return Ok(lax_find(*v, &path[1..]));
            }
        }
        self.parent.get(path)
    }

    fn set_global(&self, name: KString, val: Value) -> Option<Value> {
        self.parent.set_global(name, val)
    }

    fn set_index(&self, name: KString, val: Value) -> Option<Value> {
        self.parent.set_index(name, val)
    }

    fn get_index<'b>(&'b self, name: &str) -> Option<ValueCow<'b>> {
        self.parent.get_index(name)
    }

    fn registers(&self) -> &Registers {
        self.parent.registers()
    }
}
