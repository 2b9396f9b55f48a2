//! The local master key provider: a key ring of named AES-256 keys, kept in a private file (0600) or given in
//! an environment variable. The last key is the current one; the others stay so that data keys wrapped under
//! them can still be unwrapped until they are re-wrapped.
//!
//! The format is one key a line, `<id> <base64 of 32 bytes>`; blank lines and `#` comments are ignored.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use types::Secret;

use crate::{CryptoError, DataKey, KEY_LEN, MasterKeyProvider, WrappedKey, generate_key};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("cannot read the master key ring {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the master key ring {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "the master key ring {path} is readable by other users (mode {mode:o}): run `chmod 600 {path}` and make \
         sure nobody copied it"
    )]
    Permissions { path: PathBuf, mode: u32 },
    /// Names the line, never its content.
    #[error("{source_name}, line {line}: {problem}")]
    Parse { source_name: String, line: usize, problem: &'static str },
    #[error("{0} holds no master key")]
    Empty(String),
}

enum Source {
    File(PathBuf),
    Text,
}

/// A set of master keys; see the module documentation.
pub struct KeyRing {
    source: Source,
    source_name: String,
    keys: RwLock<Vec<DataKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.read_keys().iter().map(|k| k.id().to_owned()).collect();
        f.debug_struct("KeyRing").field("source", &self.source_name).field("key_ids", &ids).finish()
    }
}

impl KeyRing {
    /// Keys given as text, e.g. from an environment variable (`source_name` is what errors call it).
    pub fn from_text(text: &Secret<String>, source_name: &str) -> Result<KeyRing, KeyRingError> {
        let keys = parse(text.expose(), source_name)?;
        Ok(KeyRing { source: Source::Text, source_name: source_name.to_owned(), keys: RwLock::new(keys) })
    }

    /// The key ring in `path`, which must be private to its owner.
    pub fn open(path: &Path) -> Result<KeyRing, KeyRingError> {
        let keys = read_file(path)?;
        Ok(KeyRing {
            source: Source::File(path.to_owned()),
            source_name: path.display().to_string(),
            keys: RwLock::new(keys),
        })
    }

    /// Opens the key ring in `path`, first creating it with one new key if there is no file.
    pub fn open_or_create(path: &Path) -> Result<KeyRing, KeyRingError> {
        if !path.exists() {
            let (id, key) = new_entry()?;
            write_ring(path, &format!("{}{}\n", HEADER, line(&id, &key)))?;
        }
        KeyRing::open(path)
    }

    /// Adds a new key to the ring in `path` and makes it current. Returns its id. The file is replaced
    /// atomically, so nodes reading it never see half of it.
    pub fn add_key_to_file(path: &Path) -> Result<String, KeyRingError> {
        let text = read_private(path)?;
        parse(text.expose(), &path.display().to_string())?;
        let (id, key) = new_entry()?;
        let mut updated = text.expose().clone();
        if !updated.is_empty() && !updated.ends_with('\n') {
            updated.push('\n');
        }
        updated.push_str(&line(&id, &key));
        updated.push('\n');
        write_ring(path, &updated)?;
        Ok(id)
    }

    /// Removes key `id` from the ring in `path` (after every data key has been re-wrapped away from it). The
    /// current key cannot be removed. Returns whether it was there.
    pub fn remove_key_from_file(path: &Path, id: &str) -> Result<bool, KeyRingError> {
        let text = read_private(path)?;
        let name = path.display().to_string();
        let keys = parse(text.expose(), &name)?;
        if keys.last().is_some_and(|k| k.id() == id) {
            return Err(KeyRingError::Parse { source_name: name, line: 0, problem: "the current key stays" });
        }
        let mut found = false;
        let kept: Vec<&str> = text
            .expose()
            .lines()
            .filter(|l| {
                let drop = l.split_whitespace().next() == Some(id);
                found |= drop;
                !drop
            })
            .collect();
        if found {
            write_ring(path, &(kept.join("\n") + "\n"))?;
        }
        Ok(found)
    }

    /// The ids of the keys, oldest first; the last is current.
    pub fn key_ids(&self) -> Vec<String> {
        self.read_keys().iter().map(|k| k.id().to_owned()).collect()
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Vec<DataKey>> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_key<T>(
        &self,
        id: Option<&str>,
        f: impl FnOnce(&DataKey) -> Result<T, CryptoError>,
    ) -> Result<T, CryptoError> {
        let keys = self.read_keys();
        let key = match id {
            Some(id) => keys.iter().find(|k| k.id() == id),
            None => keys.last(),
        };
        match key {
            Some(key) => f(key),
            None => Err(CryptoError::UnknownKey(id.unwrap_or("(current)").to_owned())),
        }
    }
}

const HEADER: &str = "# AxonFlow master key ring: one key a line, `<id> <base64>`; the last is current.\n\
                      # Keep this file private (0600) and backed up: without it nothing encrypted can be read.\n";

impl MasterKeyProvider for KeyRing {
    fn current_key_id(&self) -> Result<String, CryptoError> {
        self.with_key(None, |k| Ok(k.id().to_owned()))
    }

    fn wrap(&self, key: &Secret<[u8; KEY_LEN]>, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        self.with_key(None, |master| {
            Ok(WrappedKey {
                master_key_id: master.id().to_owned(),
                wrapped: master.seal(key.expose(), context)?,
            })
        })
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<Secret<[u8; KEY_LEN]>, CryptoError> {
        let open = |master: &DataKey| {
            let plain = master.open(&wrapped.wrapped, context)?;
            let bytes: [u8; KEY_LEN] =
                plain.expose().as_slice().try_into().map_err(|_| CryptoError::Malformed)?;
            Ok(Secret::new(bytes))
        };
        match self.with_key(Some(&wrapped.master_key_id), open) {
            Err(CryptoError::UnknownKey(_)) => {
                // Another process may have rotated the ring since this one read it.
                self.reload()?;
                self.with_key(Some(&wrapped.master_key_id), open)
            }
            other => other,
        }
    }

    fn reload(&self) -> Result<(), CryptoError> {
        let Source::File(path) = &self.source else { return Ok(()) };
        let keys = read_file(path).map_err(|e| CryptoError::Provider(e.to_string()))?;
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(())
    }
}

fn new_entry() -> Result<(String, Secret<[u8; KEY_LEN]>), KeyRingError> {
    let key = generate_key().map_err(|_| KeyRingError::Parse {
        source_name: "random".into(),
        line: 0,
        problem: "the operating system has no randomness",
    })?;
    let tag = generate_key().map(|t| t.expose()[..4].iter().map(|b| format!("{b:02x}")).collect::<String>());
    let millis =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok((format!("mk-{millis}-{}", tag.unwrap_or_default()), key))
}

fn line(id: &str, key: &Secret<[u8; KEY_LEN]>) -> String {
    format!("{id} {}", STANDARD.encode(key.expose()))
}

fn read_file(path: &Path) -> Result<Vec<DataKey>, KeyRingError> {
    let text = read_private(path)?;
    parse(text.expose(), &path.display().to_string())
}

fn read_private(path: &Path) -> Result<Secret<String>, KeyRingError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta =
            std::fs::metadata(path).map_err(|source| KeyRingError::Read { path: path.to_owned(), source })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyRingError::Permissions { path: path.to_owned(), mode });
        }
    }
    std::fs::read_to_string(path)
        .map(Secret::new)
        .map_err(|source| KeyRingError::Read { path: path.to_owned(), source })
}

fn write_ring(path: &Path, text: &str) -> Result<(), KeyRingError> {
    let error = |source| KeyRingError::Write { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(error)?;
    file.write_all(text.as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(error)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn parse(text: &str, source_name: &str) -> Result<Vec<DataKey>, KeyRingError> {
    let problem = |line: usize, problem: &'static str| KeyRingError::Parse {
        source_name: source_name.to_owned(),
        line,
        problem,
    };
    let mut keys: Vec<DataKey> = Vec::new();
    // An environment variable cannot always hold newlines: `;` separates entries too.
    let entries = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with('#'))
        .flat_map(|(n, line)| line.split(';').map(move |entry| (n, entry.trim())))
        .filter(|(_, entry)| !entry.is_empty());
    for (n, entry) in entries {
        let mut fields = entry.split_whitespace();
        let (Some(id), Some(encoded), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(problem(n + 1, "expected `<id> <base64 key>`"));
        };
        let valid_id = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid_id {
            return Err(problem(n + 1, "a key id is 1-64 letters, digits, '.', '_' or '-'"));
        }
        if keys.iter().any(|k| k.id() == id) {
            return Err(problem(n + 1, "the key id appears twice"));
        }
        let bytes =
            Secret::new(STANDARD.decode(encoded).map_err(|_| problem(n + 1, "the key is not base64"))?);
        let key = DataKey::from_slice(id, bytes.expose()).map_err(|_| problem(n + 1, "a key is 32 bytes"))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(KeyRingError::Empty(source_name.to_owned()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_data_key, rewrap_data_key, unwrap_data_key};

    #[test]
    fn a_created_ring_is_private_and_wraps_data_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.keys");
        let ring = KeyRing::open_or_create(&path).expect("create");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (key, wrapped) = new_data_key(&ring, "dk-1").expect("new");
        let sealed = key.seal(b"hello", b"ctx").expect("seal");
        let again = unwrap_data_key(&ring, "dk-1", &wrapped).expect("unwrap");
        assert_eq!(again.open(&sealed, b"ctx").expect("open").expose(), b"hello");
        assert!(unwrap_data_key(&ring, "dk-2", &wrapped).is_err(), "a wrapped key is bound to its id");
        assert!(!format!("{ring:?}").contains(&STANDARD.encode(&wrapped.wrapped)));
    }

    #[test]
    fn rotation_adds_a_current_key_and_old_wraps_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.keys");
        let node = KeyRing::open_or_create(&path).expect("create");
        let first = node.current_key_id().expect("current");
        let (key, wrapped) = new_data_key(&node, "dk").expect("new");

        let second = KeyRing::add_key_to_file(&path).expect("rotate");
        assert_ne!(first, second);
        let operator = KeyRing::open(&path).expect("open");
        let rewrapped = rewrap_data_key(&operator, "dk", &wrapped).expect("rewrap");
        assert_eq!(rewrapped.master_key_id, second);

        // The running node has not re-read the file: it picks the new master key up when it meets it.
        let unwrapped = unwrap_data_key(&node, "dk", &rewrapped).expect("unwrap after reload");
        let sealed = key.seal(b"x", b"").expect("seal");
        assert_eq!(unwrapped.open(&sealed, b"").expect("open").expose(), b"x");
        assert_eq!(node.current_key_id().expect("current"), second);

        assert!(KeyRing::remove_key_from_file(&path, &second).is_err(), "the current key stays");
        assert!(KeyRing::remove_key_from_file(&path, &first).expect("remove"));
        let after = KeyRing::open(&path).expect("open");
        assert_eq!(after.key_ids(), vec![second]);
        assert!(unwrap_data_key(&after, "dk", &wrapped).is_err(), "a removed key opens nothing");
    }

    #[cfg(unix)]
    #[test]
    fn a_ring_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.keys");
        KeyRing::open_or_create(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = KeyRing::open(&path).expect_err("refused");
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn parse_errors_name_the_line_and_never_the_key() {
        let key = STANDARD.encode([7u8; 32]);
        let cases = [
            (format!("a {key}\nb {key}"), None),
            (format!("a {key};b {key}"), None),
            (format!("a {key}\na {key}"), Some("twice")),
            (format!("a {}", STANDARD.encode([7u8; 16])), Some("32 bytes")),
            (format!("a/b {key}"), Some("key id")),
            ("# nothing\n".to_owned(), Some("holds no master key")),
            (format!("a {key} extra"), Some("expected")),
        ];
        for (text, expected) in cases {
            let result = KeyRing::from_text(&Secret::new(text), "AXONFLOW_MASTER_KEYS");
            match (result, expected) {
                (Ok(ring), None) => assert_eq!(ring.current_key_id().expect("current"), "b"),
                (Err(e), Some(word)) => {
                    let message = e.to_string();
                    assert!(message.contains(word), "{message}");
                    assert!(!message.contains(&key), "{message}");
                }
                (result, expected) => panic!("{:?} vs {expected:?}", result.map(|r| r.key_ids())),
            }
        }
    }
}
