//! Operating the process: logging, the systemd notify protocol and unit file, graceful
//! shutdown, and the metrics `GET /metrics` renders.

pub mod backoff;
pub mod logging;
pub mod metrics;
pub mod process_metrics;
pub mod rate;
pub mod shutdown;
pub mod systemd;
