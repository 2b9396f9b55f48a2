//! A master key provider that delegates to an external program: the way to put the master key in a KMS or an
//! HSM (AWS KMS, Google Cloud KMS, Azure Key Vault, HashiCorp Vault transit) without linking their SDKs. The
//! master key never leaves the KMS; the program wraps and unwraps 32-byte data keys.
//!
//! The protocol (everything base64 on one line, standard alphabet):
//! - `PROGRAM current` prints the id of the key new data keys are wrapped with;
//! - `PROGRAM wrap CONTEXT` reads the data key on standard input and prints `KEY_ID WRAPPED`;
//! - `PROGRAM unwrap KEY_ID CONTEXT` reads `WRAPPED` on standard input and prints the data key.
//!
//! `CONTEXT` is the additional authenticated data to bind (KMS "encryption context"). A non-zero exit, a
//! timeout or unexpected output is an error; the program's standard error is not kept (it could hold
//! anything), only its exit status.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use types::Secret;

use crate::{CryptoError, KEY_LEN, MasterKeyProvider, WrappedKey};

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct CommandProvider {
    program: PathBuf,
    timeout: Duration,
}

impl CommandProvider {
    pub fn new(program: PathBuf, timeout: Duration) -> CommandProvider {
        CommandProvider { program, timeout }
    }

    /// Runs the program with `args`, writes `input` to it, and returns its one line of output.
    fn run(&self, args: &[&str], input: &[u8]) -> Result<Secret<String>, CryptoError> {
        let failed =
            |what: &str| CryptoError::Provider(format!("{} {}: {what}", self.program.display(), args[0]));
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed(&format!("cannot start it ({})", e.kind())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input).map_err(|_| failed("cannot write to it"))?;
        }
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait().map_err(|_| failed("cannot wait for it"))? {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(failed(&format!("no answer within {:?}", self.timeout)));
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        if !status.success() {
            return Err(failed(&format!("it failed ({status})")));
        }
        let mut output = String::new();
        child
            .stdout
            .take()
            .ok_or_else(|| failed("no output"))?
            .take(64 * 1024)
            .read_to_string(&mut output)
            .map_err(|_| failed("its output is not text"))?;
        let line = output.trim().to_owned();
        if line.is_empty() || line.contains('\n') {
            return Err(failed("expected one line of output"));
        }
        Ok(Secret::new(line))
    }
}

impl MasterKeyProvider for CommandProvider {
    fn current_key_id(&self) -> Result<String, CryptoError> {
        let id = self.run(&["current"], b"")?;
        Ok(id.expose().clone())
    }

    fn wrap(&self, key: &Secret<[u8; KEY_LEN]>, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        let input = Secret::new(format!("{}\n", STANDARD.encode(key.expose())));
        let output = self.run(&["wrap", &STANDARD.encode(context)], input.expose().as_bytes())?;
        let (id, wrapped) = output.expose().split_once(' ').ok_or(CryptoError::Malformed)?;
        let wrapped = STANDARD.decode(wrapped.trim()).map_err(|_| CryptoError::Malformed)?;
        if id.is_empty() || wrapped.is_empty() {
            return Err(CryptoError::Malformed);
        }
        Ok(WrappedKey { master_key_id: id.to_owned(), wrapped })
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<Secret<[u8; KEY_LEN]>, CryptoError> {
        let input = format!("{}\n", STANDARD.encode(&wrapped.wrapped));
        let output =
            self.run(&["unwrap", &wrapped.master_key_id, &STANDARD.encode(context)], input.as_bytes())?;
        let bytes = Secret::new(STANDARD.decode(output.expose()).map_err(|_| CryptoError::Malformed)?);
        let key: [u8; KEY_LEN] = bytes.expose().as_slice().try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(Secret::new(key))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::{new_data_key, unwrap_data_key};

    /// A stand-in KMS for the tests (a fixture, not production code): a shell script that keeps each data key
    /// under a random handle and returns the handle as the "wrapped" key, refusing to unwrap under another
    /// context, as a KMS keeps the key material and the caller only a reference.
    fn fake_kms(dir: &std::path::Path) -> PathBuf {
        let script = dir.join("kms");
        let store = dir.join("vault");
        std::fs::create_dir_all(&store).expect("dir");
        let text = format!(
            "#!/bin/sh\nset -eu\nSTORE='{}'\ncase \"$1\" in\n  current) echo kms-key-1 ;;\n  wrap) H=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n'); cat > \"$STORE/$H.key\"; echo \"$2\" > \"$STORE/$H.ctx\"; printf 'kms-key-1 %s\\n' \"$(printf %s \"$H\" | base64)\" ;;\n  unwrap) H=$(base64 -d); [ \"$2\" = kms-key-1 ] || exit 3; [ \"$(cat \"$STORE/$H.ctx\")\" = \"$3\" ] || exit 4; cat \"$STORE/$H.key\" ;;\n  *) exit 2 ;;\nesac\n",
            store.display()
        );
        std::fs::write(&script, text).expect("write");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        script
    }

    #[test]
    fn data_keys_wrap_and_unwrap_through_the_program_with_their_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = CommandProvider::new(fake_kms(dir.path()), Duration::from_secs(10));
        assert_eq!(kms.current_key_id().expect("current"), "kms-key-1");
        let (key, wrapped) = new_data_key(&kms, "dk-1").expect("wrap");
        assert_eq!(wrapped.master_key_id, "kms-key-1");
        let sealed = key.seal(b"through a kms", b"").expect("seal");
        let again = unwrap_data_key(&kms, "dk-1", &wrapped).expect("unwrap");
        assert_eq!(again.open(&sealed, b"").expect("open").expose(), b"through a kms");
        let error = unwrap_data_key(&kms, "dk-2", &wrapped).expect_err("another context");
        assert!(error.to_string().contains("failed"), "{error}");
    }

    #[test]
    fn a_missing_or_silent_program_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = CommandProvider::new(dir.path().join("nope"), Duration::from_secs(1));
        assert!(missing.current_key_id().expect_err("missing").to_string().contains("cannot start"));
        let slow = dir.path().join("slow");
        std::fs::write(&slow, "#!/bin/sh\nsleep 5\n").expect("write");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let slow = CommandProvider::new(slow, Duration::from_millis(200));
        assert!(slow.current_key_id().expect_err("slow").to_string().contains("no answer"));
    }
}
