//! Everything the binary prints passes through here: the run's secrets
//! (the config's passwords and service key, the API token, and every
//! session token a conform run learned) and, whoever's they are, URL
//! userinfo and `Bearer`/`Basic` credentials are masked. [`say!`] and
//! [`tell!`] are `eprintln!` and `println!` through it.

use std::sync::LazyLock;

use flareproof::model::Secret;
use flareproof::probe::Redactor;
use flareproof::target::Target;

/// One per process: what any command learned, every printer uses.
static REDACTOR: LazyLock<Redactor> = LazyLock::new(Redactor::new);

/// The redactor of everything printed.
pub fn redactor() -> &'static Redactor {
    &REDACTOR
}

pub fn learn(secret: &Secret) {
    REDACTOR.learn(secret);
}

/// The secrets of a resolved target config, the userinfo of its URLs
/// included.
pub fn learn_target(target: &Target) {
    for account in target.accounts.values() {
        learn(&account.password);
    }
    if let Some(key) = &target.service_key {
        learn(key);
    }
    for url in target.vantages.iter().chain([&target.base_url]) {
        learn_userinfo(url);
    }
}

/// A URL's password, and the `user:password` pair as HTTP Basic sends it
/// (which a target may echo): a redactor learns both, and the
/// `Authorization: Basic` value they make.
pub fn learn_userinfo(url: &url::Url) {
    use base64::Engine as _;
    let Some(password) = url.password() else {
        return;
    };
    let (user, password) = (percent_decode(url.username()), percent_decode(password));
    let pair = format!("{user}:{password}");
    REDACTOR.learn_str(&password);
    REDACTOR.learn_str(&base64::engine::general_purpose::STANDARD.encode(&pair));
    REDACTOR.learn_str(&pair);
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// Everything a run's own redactor learned (the session tokens).
pub fn absorb(run: &Redactor) {
    REDACTOR.absorb(run);
}

/// `text` as it may be printed.
pub fn text(text: &str) -> String {
    REDACTOR.scrub_printed(text)
}

/// `eprintln!`, scrubbed.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::scrub::text(&format!($($arg)*)))
    };
}

/// `println!`, scrubbed.
macro_rules! tell {
    ($($arg:tt)*) => {
        println!("{}", $crate::scrub::text(&format!($($arg)*)))
    };
}

pub(crate) use {say, tell};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_text_loses_learned_secrets_userinfo_and_bearer_tokens() {
        learn(&Secret::new("printed-canary-Zq81".to_owned()));
        let printed = text(
            "send `GET https://ci:hunter2-pw@api.test/x?k=printed-canary-Zq81`: \
             header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
        );
        assert_eq!(
            printed,
            "send `GET https://[redacted]@api.test/x?k=[redacted]`: \
             header Authorization: Bearer [redacted]"
        );
    }
}
