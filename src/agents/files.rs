//! Where the file agents (`local_file`, `read_file`) may touch the file system: only
//! below the directories the operator lists in `[files] allowed_dirs`. Huginn's
//! LocalFileAgent reaches any file the server can and is off unless insecure agents are
//! enabled; muninn's confinement is the operator's switch instead.
//!
//! Every access resolves the path first: it must be absolute, without `..`; its
//! longest existing ancestor is canonicalised (symbolic links followed) and the result
//! must lie inside an allowed directory (themselves canonicalised at start). What
//! remains below that ancestor does not exist yet, so it cannot be a link. Sizes are
//! bounded by `[files] max_file_bytes`.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::config::FilesConfig;

/// The setting an operator changes, named in every refusal.
pub const SETTING: &str = "[files] allowed_dirs (env MUNINN_FILES_ALLOWED_DIRS)";

/// Files a directory listing emits at most per run.
pub const MAX_LISTED: usize = 1000;

/// No directory allowed: what agents see when the hub gave no policy (tests).
pub static NO_FILES: FilePolicy = FilePolicy {
    dirs: Vec::new(),
    max_bytes: 0,
};

/// Why a file agent may not touch a path, or touching it failed. The path is the one
/// the agent's options gave.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "file agents are off: the operator allows no directory; set {SETTING} to the directories they may use"
    )]
    Off,
    #[error("the path '{0}' is not absolute")]
    NotAbsolute(String),
    #[error("the path '{0}' contains '..'")]
    ParentDir(String),
    #[error("the path '{0}' cannot be resolved")]
    Unresolvable(String),
    #[error("the path '{0}' is outside the directories the operator allows ({SETTING})")]
    Outside(String),
    #[error("'{path}' has {len} bytes, more than [files] max_file_bytes ({max})")]
    TooBig { path: String, len: u64, max: u64 },
    #[error("'{path}' grew past [files] max_file_bytes ({max}) while it was read")]
    Grew { path: String, max: u64 },
    #[error("writing to '{path}' would make it larger than [files] max_file_bytes ({max})")]
    WouldGrow { path: String, max: u64 },
    #[error("cannot open '{path}': {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read '{path}': {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open '{path}' for writing: {source}")]
    OpenForWriting {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write '{path}': {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot list '{}': {source}", path.display())]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default)]
pub struct FilePolicy {
    dirs: Vec<PathBuf>,
    max_bytes: u64,
}

impl FilePolicy {
    /// From the config; a listed directory that does not exist is left out (logged
    /// when `warn`: once, by the hub at start).
    pub fn from_config(config: &FilesConfig, warn: bool) -> FilePolicy {
        let dirs = config
            .allowed_dirs
            .iter()
            .filter_map(|d| match d.canonicalize() {
                Ok(c) => Some(c),
                Err(e) => {
                    if warn {
                        tracing::warn!(dir = %d.display(), error = %e, "a directory in [files] allowed_dirs cannot be resolved; file agents may not use it");
                    }
                    None
                }
            })
            .collect();
        FilePolicy {
            dirs,
            max_bytes: config.max_file_bytes,
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Refuses when the operator allows no directory at all.
    pub fn enabled(&self) -> Result<(), FileError> {
        if self.dirs.is_empty() {
            return Err(FileError::Off);
        }
        Ok(())
    }

    /// The resolved form of `path` if it lies inside an allowed directory.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, FileError> {
        self.enabled()?;
        let p = Path::new(path.trim());
        if !p.is_absolute() {
            return Err(FileError::NotAbsolute(path.to_string()));
        }
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(FileError::ParentDir(path.to_string()));
        }
        // The longest existing ancestor, resolved; the rest appended as written.
        let mut existing = p;
        let mut rest = Vec::new();
        let resolved = loop {
            match existing.canonicalize() {
                Ok(c) => break c,
                Err(_) => {
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(FileError::Unresolvable(path.to_string()));
                    };
                    rest.push(name.to_os_string());
                    existing = parent;
                }
            }
        };
        let full = rest.iter().rev().fold(resolved, |acc, n| acc.join(n));
        if self.dirs.iter().any(|d| full.starts_with(d)) {
            Ok(full)
        } else {
            Err(FileError::Outside(path.to_string()))
        }
    }

    /// Whether the fixed start of a (maybe templated) path could lie inside an allowed
    /// directory: what a save can check before any event renders it.
    pub fn check_option(&self, path: &str) -> Result<(), FileError> {
        self.enabled()?;
        let fixed = match path.find("{{").into_iter().chain(path.find("{%")).min() {
            Some(i) => match path[..i].rfind('/') {
                Some(slash) => &path[..=slash],
                // Starts with a template: known only when rendered.
                None => return Ok(()),
            },
            None => path,
        };
        self.resolve(fixed).map(|_| ())
    }

    /// What a save refuses (and an import keeps disabled): a file agent when no
    /// directory is allowed, a `local_file` whose path cannot lie inside one. The
    /// option it is about, and why.
    pub fn save_problem(
        &self,
        kind: super::Kind,
        options: &serde_json::Value,
    ) -> Option<(Option<&'static str>, String)> {
        match kind {
            super::Kind::LocalFile => {
                let path = super::json_parse::text_of(options.get("path"));
                self.check_option(path.trim())
                    .err()
                    .map(|e| (Some("path"), e.to_string()))
            }
            super::Kind::ReadFile => self.enabled().err().map(|e| (None, e.to_string())),
            _ => None,
        }
    }

    /// Reads the file at `path` as text (invalid UTF-8 replaced), at most `max_bytes`.
    pub fn read(&self, path: &str) -> Result<String, FileError> {
        let p = self.resolve(path)?;
        let file = std::fs::File::open(&p).map_err(|source| FileError::Open {
            path: path.to_string(),
            source,
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > self.max_bytes {
            return Err(FileError::TooBig {
                path: path.to_string(),
                len,
                max: self.max_bytes,
            });
        }
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| FileError::Read {
                path: path.to_string(),
                source,
            })?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(FileError::Grew {
                path: path.to_string(),
                max: self.max_bytes,
            });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Writes (or appends) `data` to `path`; returns the resolved path.
    pub fn write(&self, path: &str, data: &str, append: bool) -> Result<PathBuf, FileError> {
        let p = self.resolve(path)?;
        let before = if append {
            std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        if before.saturating_add(data.len() as u64) > self.max_bytes {
            return Err(FileError::WouldGrow {
                path: path.to_string(),
                max: self.max_bytes,
            });
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&p)
            .map_err(|source| FileError::OpenForWriting {
                path: path.to_string(),
                source,
            })?;
        file.write_all(data.as_bytes())
            .map_err(|source| FileError::Write {
                path: path.to_string(),
                source,
            })?;
        Ok(p)
    }

    /// The files directly in `dir` (no subdirectories), sorted, at most [`MAX_LISTED`].
    pub fn list(&self, dir: &Path) -> Result<Vec<PathBuf>, FileError> {
        let entries = std::fs::read_dir(dir).map_err(|source| FileError::List {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.to_str().is_some_and(|s| self.resolve(s).is_ok()))
            .take(MAX_LISTED)
            .collect();
        files.sort();
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dir: &Path) -> FilePolicy {
        FilePolicy::from_config(
            &FilesConfig {
                allowed_dirs: vec![dir.to_path_buf()],
                max_file_bytes: 16,
            },
            true,
        )
    }

    #[test]
    fn paths_stay_inside_the_allowed_dirs() {
        let allowed = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let p = policy(allowed.path());
        let inside = allowed.path().join("a.txt");
        let inside = inside.to_str().unwrap();
        assert!(p.resolve(inside).is_ok());
        assert!(
            p.resolve(&format!("{}/new/dir/f", allowed.path().display()))
                .is_ok()
        );
        let up = format!("{}/../x", allowed.path().display());
        assert!(p.resolve(&up).unwrap_err().to_string().contains("'..'"));
        assert!(
            p.resolve("relative.txt")
                .unwrap_err()
                .to_string()
                .contains("not absolute")
        );
        let outside = other.path().join("b").display().to_string();
        assert!(
            p.resolve(&outside)
                .unwrap_err()
                .to_string()
                .contains("MUNINN_FILES_ALLOWED_DIRS")
        );
        // A link inside that points outside is followed, and refused.
        let link = allowed.path().join("escape");
        std::os::unix::fs::symlink(other.path(), &link).unwrap();
        let through = link.join("secret").display().to_string();
        assert!(
            p.resolve(&through)
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
        assert!(
            FilePolicy::default()
                .resolve(inside)
                .unwrap_err()
                .to_string()
                .contains("allows no directory")
        );
    }

    #[test]
    fn reads_and_writes_are_bounded() {
        let allowed = tempfile::tempdir().unwrap();
        let p = policy(allowed.path());
        let f = allowed.path().join("f").display().to_string();
        p.write(&f, "0123456789", false).unwrap();
        assert!(
            p.write(&f, "0123456789", true)
                .unwrap_err()
                .to_string()
                .contains("max_file_bytes")
        );
        p.write(&f, "abc", true).unwrap();
        assert_eq!(p.read(&f).unwrap(), "0123456789abc");
        std::fs::write(allowed.path().join("big"), [b'x'; 17]).unwrap();
        let big = allowed.path().join("big").display().to_string();
        assert!(p.read(&big).unwrap_err().to_string().contains("17 bytes"));
        assert_eq!(p.list(allowed.path()).unwrap().len(), 2);
    }

    #[test]
    fn a_templated_path_is_checked_up_to_its_first_template() {
        let allowed = tempfile::tempdir().unwrap();
        let p = policy(allowed.path());
        let ok = format!(
            "{}/toots/{{{{ 'now' | date: '%s' }}}}.json",
            allowed.path().display()
        );
        assert!(p.check_option(&ok).is_ok());
        assert!(
            p.check_option("/path/to/{{ x }}.json")
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
        assert!(p.check_option("{{ dir }}/x").is_ok());
    }
}
