//! Operating the process: logging now; systemd, signals and metrics build on it.

pub mod logging;
