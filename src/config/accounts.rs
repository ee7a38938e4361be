//! `[accounts]`: bounds on what one user keeps, so that one user (or one agent's code
//! running in a loop) cannot fill the database for everyone.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// The most credentials one user may have; 0: no limit.
    pub max_credentials_per_user: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            max_credentials_per_user: 1000,
        }
    }
}
