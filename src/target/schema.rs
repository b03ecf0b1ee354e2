//! The file as written: serde structs and their defaults. Checked by
//! `validate`, resolved by `secrets` and `verify`.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use crate::compare::DeclaredBinding;

/// The accounts a conform run signs in as.
pub const ACCOUNT_ROLES: [&str; 4] = ["free", "free2", "pro", "admin"];

/// A per-tier limit: a number of requests per window, or `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    Count(u64),
    Unlimited(Unlimited),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlimited {
    Unlimited,
}

impl Limit {
    pub fn count(self) -> Option<u64> {
        match self {
            Limit::Count(n) => Some(n),
            Limit::Unlimited(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub anonymous: Limit,
    pub free: Limit,
    pub pro: Limit,
    pub admin: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            anonymous: Limit::Count(10),
            free: Limit::Count(60),
            pro: Limit::Count(300),
            admin: Limit::Unlimited(Unlimited::Unlimited),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    pub base_url: Url,
    #[serde(default)]
    pub vantages: Vec<Url>,
    pub origin: String,
    /// The session cookie's name (with or without its `__Host-`/`__Secure-`
    /// prefix); by default the cookie whose name ends in `session_token`.
    #[serde(default)]
    pub session_cookie: Option<String>,
}

fn default_suite() -> String {
    "flarelink-auth/v1".to_owned()
}
fn default_window_s() -> u64 {
    60
}
fn default_revocation_bound_s() -> u64 {
    60
}
fn default_max_session_age_s() -> u64 {
    604_800
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    #[serde(default = "default_suite")]
    pub suite: String,
    #[serde(default = "default_window_s")]
    pub window_s: u64,
    #[serde(default = "default_revocation_bound_s")]
    pub revocation_bound_s: u64,
    #[serde(default = "default_max_session_age_s")]
    pub max_session_age_s: u64,
    #[serde(default)]
    pub limits: Limits,
}

impl Default for ProfileSection {
    fn default() -> Self {
        ProfileSection {
            suite: default_suite(),
            window_s: default_window_s(),
            revocation_bound_s: default_revocation_bound_s(),
            max_session_age_s: default_max_session_age_s(),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    pub email: String,
    pub password_env: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub service_key_env: String,
}

fn default_max_requests() -> u64 {
    5000
}
fn default_max_rps() -> u32 {
    50
}
fn default_max_body_bytes() -> u64 {
    8 * 1024 * 1024
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default = "default_max_requests")]
    pub max_requests: u64,
    #[serde(default = "default_max_rps")]
    pub max_rps: u32,
    /// The most of one answer's body the harness reads; a longer body is
    /// cut there and the exchange is an `error` with it as evidence.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// The most bytes of answers' bodies the run holds at once (see
    /// [`Budget::kept_bytes`]); a body that would pass it is cut there and
    /// the exchange is an `error` with it as evidence.
    #[serde(default)]
    pub max_kept_bytes: Option<u64>,
}

/// Without `max_kept_bytes`, a run may hold this many whole answers of
/// `max_body_bytes` at once: room for the checks running side by side to
/// each hold what they parse, and a bound (64 MiB by default) on what a
/// target answering the largest bodies to every request makes a run hold.
const KEPT_BODIES: u64 = 8;

impl Budget {
    /// `max_kept_bytes`, or [`KEPT_BODIES`] times `max_body_bytes` (64 MiB
    /// by default). Only whole bodies a check parses or searches count: a
    /// request that needs status and headers only keeps its record (at most
    /// a few KiB of body), whatever the answer's size.
    pub fn kept_bytes(&self) -> u64 {
        self.max_kept_bytes
            .unwrap_or_else(|| self.max_body_bytes.saturating_mul(KEPT_BODIES))
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_requests: default_max_requests(),
            max_rps: default_max_rps(),
            max_body_bytes: default_max_body_bytes(),
            max_kept_bytes: None,
        }
    }
}

/// The contract's paths; a target may rename any of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub sign_up: String,
    pub sign_in: String,
    pub sign_out: String,
    pub get_session: String,
    pub revoke_sessions: String,
    pub me: String,
    pub ping: String,
    pub posts: String,
    pub query: String,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            sign_up: "/api/auth/sign-up/email".into(),
            sign_in: "/api/auth/sign-in/email".into(),
            sign_out: "/api/auth/sign-out".into(),
            get_session: "/api/auth/get-session".into(),
            revoke_sessions: "/api/auth/revoke-sessions".into(),
            me: "/api/me".into(),
            ping: "/api/ping".into(),
            posts: "/api/posts".into(),
            query: "/v1/query".into(),
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub target: TargetSection,
    #[serde(default)]
    pub profile: ProfileSection,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountSection>,
    pub data: Option<DataSection>,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub paths: Paths,
    /// What `verify` rebuilds and what the deployment must be; optional,
    /// conform-only configs leave it out.
    #[serde(default)]
    pub verify: Option<VerifySection>,
}

fn default_api_base() -> Url {
    Url::parse("https://api.cloudflare.com/client/v4").expect("a valid URL")
}
fn default_api_token_env() -> String {
    "CLOUDFLARE_API_TOKEN".to_owned()
}
fn default_account_id_env() -> String {
    "CLOUDFLARE_ACCOUNT_ID".to_owned()
}
fn default_true() -> bool {
    true
}

/// The `[verify]` section: what to rebuild, and what the deployment must be.
///
/// ```toml
/// [verify]
/// source = "fixtures"                 # the Worker's source folder, relative to this file
/// recipe = ["node", "build.mjs", "--outdir", "{out}"]  # {out}: output folder, {src}: source copy
///                                     # or "wrangler": `npx --no-install wrangler deploy --dry-run`
/// env = { NODE_ENV = "production" }   # extra environment for the recipe (it runs with a clean one)
/// non_artifacts = ["README.md"]       # globs of output files that are not upload modules
/// link = ["node_modules"]             # top-level entries hard-linked into each copy, not copied
/// main_module = "worker.js"           # only when the output has no manifest.json
/// bisect = true                       # on a rebuild difference, find the variation that exposes it
/// script = "auth-worker"              # the Worker's script name (default: the wrangler config's)
/// wrangler = "wrangler.jsonc"         # the declaration, read from the Worker's wrangler config;
/// wrangler_env = "production"         # the keys below that are set override what it says
/// compatibility_date = "2025-09-01"
/// compatibility_flags = ["nodejs_compat"]
/// bindings = [{ name = "DB", type = "d1" }, { name = "SESSIONS", type = "kv_namespace", target = "<namespace id>" }]
/// tail_consumers = []                 # tail consumer services the deployment may have
/// logpush = false                     # whether Logpush may be on
/// log_destinations = []               # Workers Logs export destinations it may have
/// api_base = "https://api.cloudflare.com/client/v4"
/// api_token_env = "CLOUDFLARE_API_TOKEN"    # needs "Workers Scripts Read"
/// account_id_env = "CLOUDFLARE_ACCOUNT_ID"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySection {
    pub source: std::path::PathBuf,
    pub recipe: RecipeSpec,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub non_artifacts: Vec<String>,
    #[serde(default)]
    pub link: Vec<String>,
    #[serde(default)]
    pub main_module: Option<String>,
    #[serde(default = "default_true")]
    pub bisect: bool,
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub compatibility_date: Option<String>,
    #[serde(default)]
    pub compatibility_flags: Option<Vec<String>>,
    #[serde(default)]
    pub bindings: Option<Vec<DeclaredBinding>>,
    #[serde(default)]
    pub tail_consumers: Option<Vec<String>>,
    #[serde(default)]
    pub logpush: Option<bool>,
    #[serde(default)]
    pub log_destinations: Option<Vec<String>>,
    #[serde(default)]
    pub streaming_tail_consumers: Option<Vec<String>>,
    #[serde(default)]
    pub trace_destinations: Option<Vec<String>>,
    #[serde(default)]
    pub observability: Option<bool>,
    #[serde(default)]
    pub placement: Option<toml::Value>,
    #[serde(default)]
    pub limits: Option<toml::Value>,
    #[serde(default)]
    pub cache_options: Option<toml::Value>,
    #[serde(default)]
    pub usage_model: Option<String>,
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    #[serde(default)]
    pub custom_domains: Option<Vec<String>>,
    #[serde(default)]
    pub workers_dev: Option<bool>,
    #[serde(default)]
    pub preview_urls: Option<bool>,
    #[serde(default)]
    pub zone_id: Option<String>,
    /// The source's lockfile, relative to `source`.
    #[serde(default)]
    pub lockfile: Option<std::path::PathBuf>,
    /// The Worker's wrangler config (`wrangler.jsonc`, `wrangler.json`,
    /// `wrangler.toml`), relative to `source`: the declaration.
    #[serde(default)]
    pub wrangler: Option<std::path::PathBuf>,
    /// Hard-link the `link` entries into each copy instead of symlinking
    /// them (default: on for `recipe = "wrangler"`, off otherwise).
    #[serde(default)]
    pub hard_link: Option<bool>,
    /// The wrangler environment (`[env.<name>]`) that is deployed.
    #[serde(default)]
    pub wrangler_env: Option<String>,
    #[serde(default = "default_api_base")]
    pub api_base: Url,
    #[serde(default = "default_api_token_env")]
    pub api_token_env: String,
    #[serde(default = "default_account_id_env")]
    pub account_id_env: String,
}

/// `recipe`: a command (a list of arguments) or a preset's name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RecipeSpec {
    Command(Vec<String>),
    /// `"wrangler"`: `npx --no-install wrangler deploy --dry-run --outdir {out}`.
    Preset(String),
}

/// A config for `verify`: `[verify]`, with `[profile]` optional. A config
/// that also has `[target]` is read (and checked) whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyOnlyConfig {
    pub(super) verify: VerifySection,
    #[serde(default)]
    pub(super) profile: ProfileSection,
}
