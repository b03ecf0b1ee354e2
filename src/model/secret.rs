//! `Secret`: a string whose `Debug` and `Display` never show it.

use std::fmt;

/// A secret value (API token, service key, password, session token).
///
/// Its `Debug` and `Display` print `[redacted]`; the value is only reachable
/// through [`Secret::expose`], so it cannot end up in a log line or a panic
/// message by accident. It deliberately implements neither `Serialize` nor
/// `Deserialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
