//! Where the console's API token comes from, first found wins: `--token` or
//! `MUNINN_TOKEN`, then `--token-file` (or `MUNINN_TOKEN_FILE`), then the hub's
//! `<data dir>/admin.token`, so on the hub's machine `ssh -t host muninn-console
//! --data-dir DIR` needs no copy-paste. The token is never printed.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error(
        "no API token: pass --token or set MUNINN_TOKEN, pass --token-file FILE, or point --data-dir at the hub's data directory ({path} is not readable: {reason})"
    )]
    NotFound { path: String, reason: String },
    #[error("cannot read the token file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the token file {path} is empty: write the API token into it")]
    Empty { path: String },
}

/// What the command line and environment said.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub data_dir: PathBuf,
}

/// A token file holds the token on its first line; more than 4 KiB is not a token.
fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > 4096 {
        return Err(format!("{} bytes is too large for a token", meta.len()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

pub fn resolve(s: &Sources) -> Result<String, TokenError> {
    if let Some(t) = s.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(t.to_string());
    }
    if let Some(path) = &s.token_file {
        let shown = path.display().to_string();
        let t = read(path).map_err(|reason| TokenError::File {
            path: shown.clone(),
            reason,
        })?;
        if t.is_empty() {
            return Err(TokenError::Empty { path: shown });
        }
        return Ok(t);
    }
    let path = s.data_dir.join("admin.token");
    let shown = path.display().to_string();
    match read(&path) {
        Ok(t) if !t.is_empty() => Ok(t),
        Ok(_) => Err(TokenError::Empty { path: shown }),
        Err(reason) => Err(TokenError::NotFound {
            path: shown,
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_then_file_then_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.token"), "from-data-dir\n").unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "  from-file  \nsecond line\n").unwrap();
        let mut s = Sources {
            token: Some(" from-env ".into()),
            token_file: Some(file.clone()),
            data_dir: dir.path().to_path_buf(),
        };
        assert_eq!(resolve(&s).unwrap(), "from-env");
        s.token = Some("  ".into());
        assert_eq!(resolve(&s).unwrap(), "from-file");
        s.token_file = None;
        assert_eq!(resolve(&s).unwrap(), "from-data-dir");
        s.data_dir = dir.path().join("nowhere");
        let e = resolve(&s).unwrap_err().to_string();
        assert!(
            e.contains("--token-file") && e.contains("admin.token"),
            "{e}"
        );
        s.token_file = Some(dir.path().join("missing"));
        assert!(matches!(resolve(&s), Err(TokenError::File { .. })));
        std::fs::write(&file, "\n").unwrap();
        s.token_file = Some(file);
        assert!(matches!(resolve(&s), Err(TokenError::Empty { .. })));
    }
}
