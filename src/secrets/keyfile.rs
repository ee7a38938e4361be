//! Where the keyring comes from: `MUNINN_SECRET_KEY` (base64 keys, comma-separated,
//! the first seals) or `<data dir>/secret.key` (one base64 key a line, the first seals),
//! created at first start with mode 0600. Also the lock that keeps a key rotation from
//! running under a live hub.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

use super::{KEY_LEN, Key, Keyring, SecretError};

pub const KEY_ENV: &str = "MUNINN_SECRET_KEY";
pub const KEY_FILE: &str = "secret.key";
pub const LOCK_FILE: &str = "secret.key.lock";

const HEADER: &str = "# muninn secret key: it opens the secrets in the database. Keep this file 0600 and\n\
# back it up apart from the database. The first key seals; the others only open\n\
# (they stay while `muninn secrets rotate-key` re-seals).\n";

/// Where the keyring's keys came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
    Memory,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => write!(f, "keys from {KEY_ENV}"),
            KeySource::File(p) => write!(f, "keys from {}", p.display()),
            KeySource::Memory => write!(f, "a key held in memory only"),
        }
    }
}

fn file_err(path: &Path, reason: impl fmt::Display) -> SecretError {
    SecretError::KeyFile {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Why the text of a key list (the variable or the file) holds no usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum KeyTextError {
    #[error("a key is not base64 ({0})")]
    NotBase64(base64::DecodeError),
    #[error(
        "a key must be {KEY_LEN} bytes, base64-encoded (make one with `openssl rand -base64 32`); this one is {0} bytes"
    )]
    WrongLength(usize),
    #[error("no key in it")]
    NoKey,
}

fn parse_key(text: &str) -> Result<[u8; KEY_LEN], KeyTextError> {
    let bytes = B64.decode(text.trim()).map_err(KeyTextError::NotBase64)?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyTextError::WrongLength(bytes.len()))
}

fn parse_keys<'a>(
    items: impl Iterator<Item = &'a str>,
) -> Result<Vec<[u8; KEY_LEN]>, KeyTextError> {
    let keys = items
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_key)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyTextError::NoKey);
    }
    Ok(keys)
}

/// Writes `contents` to a new file beside `path`, mode 0600 whatever the umask, synced.
fn write_temp(path: &Path, contents: &str) -> std::io::Result<PathBuf> {
    let mut rnd = [0u8; 6];
    rand::rng().fill_bytes(&mut rnd);
    let tmp = path.with_extension(format!("tmp-{}", hex::encode(rnd)));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(tmp)
}

fn sync_dir(path: &Path) {
    // Makes the new name durable; a file system that cannot sync directories is not a
    // reason to refuse to start.
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

impl Keyring {
    /// The hub's keyring: from `env` (the value of `MUNINN_SECRET_KEY`) when set, else
    /// from `<data_dir>/secret.key`, which is created with a new key if absent.
    pub fn load(data_dir: &Path, env: Option<&str>) -> Result<Keyring, SecretError> {
        if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
            let keys = parse_keys(v.split(',')).map_err(|e| SecretError::EnvKey(e.to_string()))?;
            return Ok(Keyring::from_keys(keys, KeySource::Env));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Keyring::parse_file(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Keyring::create(&path),
            Err(e) => Err(file_err(&path, e)),
        }
    }

    fn parse_file(path: &Path, text: &str) -> Result<Keyring, SecretError> {
        let keys = parse_keys(text.lines()).map_err(|e| file_err(path, e))?;
        Ok(Keyring::from_keys(
            keys,
            KeySource::File(path.to_path_buf()),
        ))
    }

    /// Creates the key file atomically: a complete temporary file is linked to the final
    /// name, which fails if another process made it first (then its key is used), so a
    /// reader never sees a half-written key and two starts never make two keys.
    fn create(path: &Path) -> Result<Keyring, SecretError> {
        let ring = Keyring {
            keys: vec![Key::random()],
            source: KeySource::File(path.to_path_buf()),
        };
        let tmp = write_temp(path, &ring.file_text()).map_err(|e| file_err(path, e))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(path);
                tracing::info!(path = %path.display(), key_id = ring.current_id(), "created the secret key (back it up apart from the database)");
                Ok(ring)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
                Keyring::parse_file(path, &text)
            }
            Err(e) => Err(file_err(path, e)),
        }
    }

    fn file_text(&self) -> String {
        let mut text = HEADER.to_string();
        for k in &self.keys {
            text.push_str(&B64.encode(k.bytes));
            text.push('\n');
        }
        text
    }

    /// Replaces the key file with this keyring's keys (atomically: write, sync, rename).
    pub fn save(&self) -> Result<(), SecretError> {
        let KeySource::File(path) = &self.source else {
            return Ok(());
        };
        let tmp = write_temp(path, &self.file_text()).map_err(|e| file_err(path, e))?;
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(file_err(path, e));
        }
        sync_dir(path);
        Ok(())
    }

    /// This keyring with a new random key in front (it seals from now on); the old keys
    /// stay to open what they sealed.
    pub fn with_new_key(&self) -> Keyring {
        let mut keys = vec![Key::random()];
        keys.extend(self.keys.iter().cloned());
        Keyring {
            keys,
            source: self.source.clone(),
        }
    }

    /// This keyring with only the key that seals.
    pub fn current_only(&self) -> Keyring {
        Keyring {
            keys: self.keys.iter().take(1).cloned().collect(),
            source: self.source.clone(),
        }
    }
}

/// A lock on `<data dir>/secret.key.lock`: the hub holds it shared while it runs, a key
/// rotation takes it exclusive, so the two never overlap (a running hub would keep
/// sealing with the key being retired). Released when dropped or when the process ends.
pub struct RotationLock {
    _file: File,
}

impl RotationLock {
    fn open(data_dir: &Path) -> Result<(File, PathBuf), SecretError> {
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| file_err(&path, e))?;
        Ok((file, path))
    }

    /// Taken by the hub at start; shared so a second `muninn` process reading keys is not
    /// refused by it.
    pub fn shared(data_dir: &Path) -> Result<RotationLock, SecretError> {
        let (file, path) = RotationLock::open(data_dir)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(RotationLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(file_err(
                &path,
                "a key rotation is running on this data directory; start the hub when it is done",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(file_err(&path, e)),
        }
    }

    /// Taken by `muninn secrets rotate-key`: refused while a hub runs.
    pub fn exclusive(data_dir: &Path) -> Result<RotationLock, SecretError> {
        let (file, path) = RotationLock::open(data_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(RotationLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(SecretError::HubRunning {
                path: path.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(file_err(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keyring::load(dir.path(), None).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = Keyring::load(dir.path(), None).unwrap();
        assert_eq!(a.key_ids(), b.key_ids());
        assert_eq!(b.open("p", &a.seal("p", "x")).unwrap(), "x");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEY_FILE)]);
    }

    #[test]
    fn env_keys_win_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = B64.encode([1u8; 32]);
        let k2 = B64.encode([2u8; 32]);
        let ring = Keyring::load(dir.path(), Some(&format!("{k1}, {k2}"))).unwrap();
        assert_eq!(ring.key_ids().len(), 2);
        assert_eq!(ring.source(), &KeySource::Env);
        assert!(!dir.path().join(KEY_FILE).exists());
        let err = Keyring::load(dir.path(), Some("c2hvcnQ=")).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
        let err = Keyring::load(dir.path(), Some("not base64!")).unwrap_err();
        assert!(err.to_string().contains(KEY_ENV), "{err}");
    }

    #[test]
    fn rotation_keeps_old_keys_until_saved_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let old = Keyring::load(dir.path(), None).unwrap();
        let sealed = old.seal("p", "v");
        let during = old.with_new_key();
        during.save().unwrap();
        let reread = Keyring::load(dir.path(), None).unwrap();
        assert_eq!(reread.key_ids(), during.key_ids());
        assert_eq!(reread.open("p", &sealed).unwrap(), "v");
        during.current_only().save().unwrap();
        let after = Keyring::load(dir.path(), None).unwrap();
        assert_eq!(after.key_ids(), vec![during.current_id().to_string()]);
        assert!(after.open("p", &sealed).is_err());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_running_hub_blocks_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let hub = RotationLock::shared(dir.path()).unwrap();
        let err = RotationLock::exclusive(dir.path()).err().unwrap();
        assert!(matches!(err, SecretError::HubRunning { .. }), "{err}");
        drop(hub);
        let rotating = RotationLock::exclusive(dir.path()).unwrap();
        assert!(RotationLock::shared(dir.path()).is_err());
        drop(rotating);
    }
}
