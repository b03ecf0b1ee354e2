//! The v4 response envelope: `{success, errors, messages, result}`.

use serde::Deserialize;

/// One entry of `errors` or `messages`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiMessage {
    #[serde(default)]
    pub code: serde_json::Value,
    #[serde(default)]
    pub message: String,
}

impl std::fmt::Display for ApiMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            serde_json::Value::Null => f.write_str(&self.message),
            code => write!(f, "{} (code {code})", self.message),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<T> {
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ApiMessage>,
    #[serde(default)]
    pub messages: Vec<ApiMessage>,
    pub result: Option<T>,
}

/// `": message (code 10000); …"` or empty, to append to an error message.
pub fn describe(errors: &[ApiMessage]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(": {}", list.join("; "))
}

/// The `errors` of a body that may or may not be an envelope.
pub fn errors_of(body: &[u8]) -> Vec<ApiMessage> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ApiMessage>,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default()
}
