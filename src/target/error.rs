//! What can go wrong reading a target config.

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("read config `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parse config `{path}`")]
    Parse {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("config `{path}`: {problem}")]
    Invalid { path: String, problem: String },
    #[error("config `{path}`: environment variable `{var}` (named by `{key}`) is not set or empty")]
    MissingSecret {
        path: String,
        key: String,
        var: String,
    },
}
