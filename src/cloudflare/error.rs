//! Why the Cloudflare API could not be read.

use super::multipart::MultipartError;

/// An API read that failed. Messages name the URL, never the token.
/// The token permission that reading a script (its deployments, versions,
/// content and settings) needs.
pub const SCRIPTS_READ: &str = "Workers Scripts Read";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("send `GET {url}`")]
    Send {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("read the body of `GET {url}` (HTTP {status})")]
    Body {
        url: String,
        status: u16,
        #[source]
        source: reqwest::Error,
    },
    #[error("read `{url}`: the API token was refused (HTTP {status}){detail}")]
    Unauthorized {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("read `{url}`: HTTP {status} after {attempts} attempt(s){detail}")]
    Status {
        url: String,
        status: u16,
        attempts: u32,
        detail: String,
    },
    #[error("read `{url}`: the API answered `success: false`{detail}")]
    Envelope { url: String, detail: String },
    /// The answer's body is longer than [`super::client::MAX_API_BODY`].
    #[error(
        "read `GET {url}` (HTTP {status}): its body is longer than {limit} bytes, more than any Worker's modules or settings take; it was not read further"
    )]
    TooLarge {
        url: String,
        status: u16,
        limit: u64,
    },
    #[error("parse the JSON from `{url}` (malformed or truncated)")]
    Malformed {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("understand the response from `{url}`: {problem}")]
    Shape { url: String, problem: String },
    #[error("parse the multipart script download from `{url}`")]
    Multipart {
        url: String,
        #[source]
        source: MultipartError,
    },
    #[error("decode module `{module}` of version {version} from base64")]
    Base64 {
        module: String,
        version: String,
        #[source]
        source: base64::DecodeError,
    },
}

impl ApiError {
    /// The HTTP status the error came with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { status, .. }
            | ApiError::Status { status, .. }
            | ApiError::Body { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The token was refused: a permission problem, not a transient one.
    pub fn is_auth(&self) -> bool {
        matches!(self, ApiError::Unauthorized { .. })
    }

    /// What to do about it, for the binary's `hint:` line, for a read of
    /// the script (which needs [`SCRIPTS_READ`]).
    pub fn hint(&self, token_env: &str) -> String {
        self.hint_for(token_env, SCRIPTS_READ)
    }

    /// [`ApiError::hint`] for a read whose endpoint needs `permission`.
    pub fn hint_for(&self, token_env: &str, permission: &str) -> String {
        if self.is_auth() {
            format!(
                "check that `{token_env}` holds an API token with the \"{permission}\" \
                 permission on this account, and that the account id is right"
            )
        } else if matches!(self, ApiError::TooLarge { .. }) {
            "check that `api_base` is the Cloudflare API (https://api.cloudflare.com/client/v4): \
             none of its answers to these reads is this large"
                .to_owned()
        } else {
            "the Cloudflare API could not be read; retry later, or check `api_base`, the \
             account id and the script name in the `[verify]` section"
                .to_owned()
        }
    }
}
