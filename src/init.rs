//! `flareproof init`: the questions a new `flareproof.toml` needs answered,
//! what the Worker's wrangler config already answers, and the commented
//! file the answers make.
//!
//! One list of [`Question`]s serves both ways of answering: a flag per
//! question (`--base-url`, `--free-email`, …) for CI, a prompt per
//! unanswered question on a terminal. Secrets are never asked for: only the
//! names of the environment variables that hold them, and an answer to such
//! a question must look like a variable name (a password typed there is
//! refused, not written).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::target::wrangler::{self, WranglerDeclaration};

/// The accounts the contract's suites sign in as.
pub const ROLES: [&str; 4] = ["free", "free2", "pro", "admin"];

/// The wrangler config names `init` looks for, in wrangler's order.
pub const WRANGLER_NAMES: [&str; 3] = ["wrangler.jsonc", "wrangler.json", "wrangler.toml"];

/// How an answer is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `http(s)` URL.
    Url,
    /// An `http(s)` origin: scheme, host and port only.
    Origin,
    Email,
    /// The name of an environment variable (`[A-Z_][A-Z0-9_]*`).
    EnvVar,
    /// A whole number of at least 1.
    Count,
}

impl Kind {
    /// The answer, normalised, or why it is not one.
    pub fn check(self, answer: &str) -> Result<String, String> {
        let a = answer.trim();
        match self {
            Kind::Url | Kind::Origin => {
                let url = url::Url::parse(a).map_err(|e| format!("not a URL ({e})"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err("not an http(s) URL with a host".to_owned());
                }
                if url.username() != "" || url.password().is_some() {
                    return Err(
                        "a URL with a user or password in it (keep secrets out of the config)"
                            .to_owned(),
                    );
                }
                if self == Kind::Origin {
                    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
                        return Err("an origin is scheme, host and port only (no path)".to_owned());
                    }
                    return Ok(url.origin().ascii_serialization());
                }
                Ok(url.to_string())
            }
            Kind::Email => {
                let ok = a.split_once('@').is_some_and(|(user, host)| {
                    !user.is_empty() && host.contains('.') && !a.contains(char::is_whitespace)
                });
                if ok {
                    Ok(a.to_owned())
                } else {
                    Err("not an e-mail address".to_owned())
                }
            }
            Kind::EnvVar => {
                let mut chars = a.chars();
                let ok = chars
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                    && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if ok {
                    Ok(a.to_owned())
                } else {
                    Err("the NAME of an environment variable (A-Z, 0-9, _), never the secret itself"
                        .to_owned())
                }
            }
            Kind::Count => match a.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(n.to_string()),
                _ => Err("a whole number of at least 1".to_owned()),
            },
        }
    }
}

/// One thing the config needs: its flag, how it is asked, its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The flag that answers it (without `--`), also its key.
    pub flag: String,
    pub prompt: String,
    pub kind: Kind,
    /// What an empty answer (or no flag, non-interactively) means; `None`:
    /// it must be answered.
    pub default: Option<String>,
}

/// What the Worker's wrangler config says, as far as `init` uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundWrangler {
    /// The file, as given or found.
    pub path: PathBuf,
    pub env: Option<String>,
    pub declaration: WranglerDeclaration,
}

impl FoundWrangler {
    /// The URL traffic most likely reaches the Worker at: its first custom
    /// domain, else the host of its first route without a wildcard host.
    pub fn base_url_guess(&self) -> Option<String> {
        let d = &self.declaration;
        let host = d.custom_domains.first().cloned().or_else(|| {
            d.routes.iter().find_map(|r| {
                let host = r.split('/').next().unwrap_or("");
                (!host.is_empty() && !host.contains('*')).then(|| host.to_owned())
            })
        })?;
        Kind::Url.check(&format!("https://{host}/")).ok()
    }
}

/// Reads the wrangler config at `path` (for environment `env`).
pub fn read_wrangler(path: &Path, env: Option<&str>) -> Result<FoundWrangler, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let value = wrangler::parse(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    let declaration =
        wrangler::declaration(&value, env).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(FoundWrangler {
        path: path.to_path_buf(),
        env: env.map(str::to_owned),
        declaration,
    })
}

/// The first wrangler config in `dir`, by wrangler's order of names.
pub fn find_wrangler(dir: &Path) -> Option<PathBuf> {
    WRANGLER_NAMES
        .iter()
        .map(|name| {
            if dir == Path::new(".") {
                PathBuf::from(name)
            } else {
                dir.join(name)
            }
        })
        .find(|p| p.is_file())
}

/// Every question, in the order they are asked, with the defaults the
/// contract and the wrangler config give.
pub fn questions(wrangler: Option<&FoundWrangler>) -> Vec<Question> {
    let q = |flag: &str, prompt: &str, kind, default: Option<String>| Question {
        flag: flag.to_owned(),
        prompt: prompt.to_owned(),
        kind,
        default,
    };
    let mut list = vec![
        q(
            "base-url",
            "the auth Worker's base URL (where conform sends its requests)",
            Kind::Url,
            wrangler.and_then(FoundWrangler::base_url_guess),
        ),
        q(
            "origin",
            "the trusted Origin of the app that calls it (e.g. https://app.example.com)",
            Kind::Origin,
            None,
        ),
    ];
    for role in ROLES {
        list.push(q(
            &format!("{role}-email"),
            &format!("the e-mail address of the `{role}` test account"),
            Kind::Email,
            None,
        ));
        list.push(q(
            &format!("{role}-password-env"),
            &format!("the environment variable holding the `{role}` account's password"),
            Kind::EnvVar,
            Some(format!("FLAREPROOF_{}_PASSWORD", role.to_uppercase())),
        ));
    }
    list.extend([
        q(
            "service-key-env",
            "the environment variable holding the data plane's service key",
            Kind::EnvVar,
            Some("FLAREPROOF_SERVICE_KEY".to_owned()),
        ),
        q(
            "window-s",
            "the rate-limit window, in seconds",
            Kind::Count,
            Some("60".to_owned()),
        ),
        q(
            "limit-anonymous",
            "requests per window an anonymous client may make",
            Kind::Count,
            Some("10".to_owned()),
        ),
        q(
            "limit-free",
            "requests per window a free user may make",
            Kind::Count,
            Some("60".to_owned()),
        ),
        q(
            "limit-pro",
            "requests per window a pro user may make",
            Kind::Count,
            Some("300".to_owned()),
        ),
        q(
            "revocation-bound-s",
            "how long a revoked session may still work at another edge, in seconds",
            Kind::Count,
            Some("60".to_owned()),
        ),
    ]);
    list
}

/// A TOML string literal.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The commented config the answers (flag → checked answer, every
/// question answered) make; `config_dir` is where it will be written, so
/// that the wrangler path is relative to it.
pub fn render(
    answers: &BTreeMap<String, String>,
    wrangler: Option<&FoundWrangler>,
    config_dir: &Path,
) -> String {
    let a = |flag: &str| answers.get(flag).map(String::as_str).unwrap_or_default();
    let mut out = String::new();
    out.push_str(
        "# flareproof.toml, written by `flareproof init`. The README's \"The target config\"\n\
         # describes every key. Secrets are never in this file: each `*_env` key names the\n\
         # environment variable that holds one.\n\n",
    );
    out.push_str("[target]\n");
    out.push_str(&format!(
        "base_url = {}   # where conform sends its requests\n",
        toml_str(a("base-url"))
    ));
    out.push_str(
        "# vantages = [\"https://edge2.example.com\"]   # other edges, for revocation windows\n",
    );
    out.push_str(&format!(
        "origin = {}   # the trusted Origin sent with browser-like requests\n\n",
        toml_str(a("origin"))
    ));
    out.push_str("[profile]\nsuite = \"flarelink-auth/v1\"\n");
    out.push_str(&format!("window_s = {}\n", a("window-s")));
    out.push_str(&format!(
        "revocation_bound_s = {}\n",
        a("revocation-bound-s")
    ));
    out.push_str(&format!(
        "limits = {{ anonymous = {}, free = {}, pro = {}, admin = \"unlimited\" }}\n\n",
        a("limit-anonymous"),
        a("limit-free"),
        a("limit-pro")
    ));
    for role in ROLES {
        out.push_str(&format!(
            "[accounts.{role}]\nemail = {}\npassword_env = {}\n\n",
            toml_str(a(&format!("{role}-email"))),
            toml_str(a(&format!("{role}-password-env")))
        ));
    }
    out.push_str(&format!(
        "[data]\nservice_key_env = {}\n\n",
        toml_str(a("service-key-env"))
    ));
    out.push_str(
        "[budget]\nmax_requests = 5000   # the run never sends more\nmax_rps = 50          # nor faster\n",
    );
    if let Some(w) = wrangler {
        let dir = w
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let source = relative(dir, config_dir);
        let file = w
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push_str(
            "\n# What `verify` rebuilds and compares, declared by the Worker's wrangler config.\n",
        );
        out.push_str("[verify]\n");
        out.push_str(&format!("source = {}\n", toml_str(&source)));
        out.push_str("recipe = \"wrangler\"   # npx --no-install wrangler deploy --dry-run (install the project's dependencies first)\n");
        out.push_str("link = [\"node_modules\"]\n");
        out.push_str(&format!("wrangler = {}\n", toml_str(&file)));
        match &w.env {
            Some(env) => out.push_str(&format!("wrangler_env = {}\n", toml_str(env))),
            None => {
                out.push_str("# wrangler_env = \"production\"   # the [env.*] that is deployed\n")
            }
        }
        if let Some(script) = &w.declaration.script {
            out.push_str(&format!(
                "# script: {} (from the wrangler config)\n",
                script
            ));
        }
        out.push_str(
            "api_token_env = \"CLOUDFLARE_API_TOKEN\"     # a token with \"Workers Scripts Read\" (and \"Workers Routes Read\")\n\
             account_id_env = \"CLOUDFLARE_ACCOUNT_ID\"\n",
        );
    }
    out
}

/// `path` relative to `base` when it lies under it, else `path` as given.
fn relative(path: &Path, base: &Path) -> String {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (p, b) = (canon(path), canon(base));
    match p.strip_prefix(&b) {
        Ok(rest) if rest.as_os_str().is_empty() => ".".to_owned(),
        Ok(rest) => rest.display().to_string(),
        Err(_) => p.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_and_a_secret_is_refused_where_a_name_is_asked() {
        assert_eq!(
            Kind::Origin.check("https://App.example.com").unwrap(),
            "https://app.example.com"
        );
        assert!(Kind::Origin.check("https://app.example.com/login").is_err());
        assert!(Kind::Url.check("ftp://x").is_err());
        assert!(Kind::Url.check("https://u:p@x.example").is_err());
        assert!(Kind::Email.check("free@acme.test").is_ok());
        assert!(Kind::Email.check("free").is_err());
        assert!(Kind::EnvVar.check("FLAREPROOF_FREE_PASSWORD").is_ok());
        let err = Kind::EnvVar.check("hunter2!").unwrap_err();
        assert!(err.contains("never the secret"), "{err}");
        assert!(Kind::Count.check("0").is_err());
        assert_eq!(Kind::Count.check(" 42 ").unwrap(), "42");
    }

    #[test]
    fn the_base_url_is_guessed_from_a_custom_domain_then_a_plain_route() {
        let mut w = FoundWrangler {
            path: "wrangler.jsonc".into(),
            env: None,
            declaration: WranglerDeclaration {
                routes: vec!["*.acme.test/*".into(), "auth.acme.test/api/*".into()],
                ..Default::default()
            },
        };
        assert_eq!(
            w.base_url_guess().as_deref(),
            Some("https://auth.acme.test/")
        );
        w.declaration.custom_domains = vec!["login.acme.test".into()];
        assert_eq!(
            w.base_url_guess().as_deref(),
            Some("https://login.acme.test/")
        );
        w.declaration = WranglerDeclaration::default();
        assert_eq!(w.base_url_guess(), None);
    }

    #[test]
    fn every_answer_rendered_loads_with_the_config_parser() {
        let mut answers = BTreeMap::new();
        for q in questions(None) {
            let value = q.default.clone().unwrap_or_else(|| match q.kind {
                Kind::Url => "https://auth.acme.test/".into(),
                Kind::Origin => "https://app.acme.test".into(),
                Kind::Email => format!("{}@acme.test", q.flag),
                _ => unreachable!("{q:?} has a default"),
            });
            answers.insert(q.flag, value);
        }
        // A value that needs escaping stays one string.
        answers.insert("free-email".into(), "a\"b@acme.test".into());
        let text = render(&answers, None, Path::new("."));
        let config = crate::target::TargetConfig::parse("init.toml", &text).unwrap();
        assert_eq!(config.accounts["free"].email, "a\"b@acme.test");
        assert_eq!(
            config.accounts["pro"].password_env,
            "FLAREPROOF_PRO_PASSWORD"
        );
    }
}
