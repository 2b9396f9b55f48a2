//! A wrapper for secret material whose `Debug` and `Display` never show the value.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Secret material: a key, a credential, a token. Printing it shows `[redacted]`, comparing it is constant-time
/// and dropping it zeroes the memory.
#[derive(Clone, Default)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The secret value. Call sites of this function are the places to review for leaks.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize + AsRef<[u8]>> PartialEq for Secret<T> {
    /// Constant-time in the length of the shorter value; lengths are not secret.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_ref().ct_eq(other.0.as_ref()).into()
    }
}

impl<T: Zeroize + AsRef<[u8]>> Eq for Secret<T> {}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("AXON-V2-abc-123".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert!(!format!("{secret:#?}").contains("AXON"));
    }

    #[test]
    fn equality_compares_values() {
        let a = Secret::new(b"same".to_vec());
        assert!(a == Secret::new(b"same".to_vec()));
        assert!(a != Secret::new(b"diff".to_vec()));
        assert!(a != Secret::new(b"same-but-longer".to_vec()));
    }
}
