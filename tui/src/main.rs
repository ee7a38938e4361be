//! `muninn-console`: the operator console. The screens arrive with the console issue;
//! this binary already builds in the workspace so CI covers it from the start.

fn main() {
    println!("muninn-console {}", env!("CARGO_PKG_VERSION"));
}
