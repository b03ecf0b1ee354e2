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

/// The most of the API's own words an error message repeats.
const MAX_DESCRIBED_CHARS: usize = 2000;

/// `": message (code 10000); …"` or empty, to append to an error message.
/// The API's words reach a terminal: control characters (an escape
/// sequence could rewrite what was printed before) are shown escaped, and
/// the text is cut at [`MAX_DESCRIBED_CHARS`].
pub fn describe(errors: &[ApiMessage]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let joined = list.join("; ");
    let mut out = String::from(": ");
    for (i, c) in joined.chars().enumerate() {
        if i == MAX_DESCRIBED_CHARS {
            out.push_str(" [cut]");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any body the API sends yields its errors or none, never a panic.
        #[test]
        fn any_body_gives_errors_or_none(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let errors = errors_of(&body);
            let _ = describe(&errors);
        }

        /// An escape sequence in the API's message is shown, not sent to
        /// the terminal; a flood of messages is cut.
        #[test]
        fn control_characters_are_escaped(n in 1usize..3000) {
            let m = ApiMessage { code: serde_json::Value::Null, message: "\u{1b}[2J\r".repeat(n) };
            let text = describe(&[m]);
            prop_assert!(!text.chars().any(char::is_control));
            prop_assert!(text.chars().count() <= MAX_DESCRIBED_CHARS * 6 + 10);
        }

        /// Envelopes of any shape of `errors` entries decode or fail, and
        /// what decodes describes every message.
        #[test]
        fn generated_envelopes_describe_every_message(
            messages in proptest::collection::vec("\\PC{0,30}", 0..4),
            code in prop_oneof![
                Just(serde_json::Value::Null),
                any::<i64>().prop_map(serde_json::Value::from),
                "\\PC{0,8}".prop_map(serde_json::Value::from),
            ],
        ) {
            let errors: Vec<_> = messages
                .iter()
                .map(|m| serde_json::json!({ "code": code, "message": m }))
                .collect();
            let body = serde_json::json!({ "success": false, "errors": errors, "result": null });
            let decoded = errors_of(body.to_string().as_bytes());
            prop_assert_eq!(decoded.len(), messages.len());
            let text = describe(&decoded);
            prop_assert!(!text.chars().any(char::is_control), "{:?}", text);
            for m in messages.iter().filter(|m| !m.chars().any(char::is_control)) {
                prop_assert!(text.contains(m.as_str()));
            }
        }
    }
}
