//! What differs between the two builds, one dimension at a time.

use std::fmt;

/// One thing a build may (wrongly) depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    BuildPath,
    Timezone,
    Locale,
    Umask,
    Home,
    SourceDateEpoch,
    EnvOrder,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::BuildPath,
        Dimension::Timezone,
        Dimension::Locale,
        Dimension::Umask,
        Dimension::Home,
        Dimension::SourceDateEpoch,
        Dimension::EnvOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::BuildPath => "build path",
            Dimension::Timezone => "TZ",
            Dimension::Locale => "LC_ALL",
            Dimension::Umask => "umask",
            Dimension::Home => "HOME",
            Dimension::SourceDateEpoch => "SOURCE_DATE_EPOCH",
            Dimension::EnvOrder => "environment order",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variation {
    /// Path components between the build's own folder and the source copy.
    pub path: Vec<&'static str>,
    pub tz: &'static str,
    pub locale: &'static str,
    pub umask: &'static str,
    pub home: &'static str,
    pub source_date_epoch: Option<&'static str>,
    pub env_reversed: bool,
}

impl Variation {
    /// The first build's settings.
    pub fn baseline() -> Variation {
        Variation {
            path: vec!["src"],
            tz: "UTC",
            locale: "C.UTF-8",
            umask: "022",
            home: "home",
            source_date_epoch: None,
            env_reversed: false,
        }
    }

    /// The second build's settings: every dimension differs from the first.
    pub fn varied() -> Variation {
        Variation {
            path: vec!["a-much", "deeper", "build path", "source"],
            tz: "Pacific/Kiritimati",
            locale: "fr_FR.UTF-8",
            umask: "077",
            home: "other-home",
            source_date_epoch: Some("1700000000"),
            env_reversed: true,
        }
    }

    /// The baseline with one dimension taken from [`Variation::varied`].
    pub fn baseline_but(dimension: Dimension) -> Variation {
        let (mut v, varied) = (Variation::baseline(), Variation::varied());
        match dimension {
            Dimension::BuildPath => v.path = varied.path,
            Dimension::Timezone => v.tz = varied.tz,
            Dimension::Locale => v.locale = varied.locale,
            Dimension::Umask => v.umask = varied.umask,
            Dimension::Home => v.home = varied.home,
            Dimension::SourceDateEpoch => v.source_date_epoch = varied.source_date_epoch,
            Dimension::EnvOrder => v.env_reversed = varied.env_reversed,
        }
        v
    }

    /// A one-line description for evidence.
    pub fn describe(&self) -> String {
        format!(
            "path …/{}, TZ={}, LC_ALL={}, umask {}, HOME …/{}, SOURCE_DATE_EPOCH={}, env {}",
            self.path.join("/"),
            self.tz,
            self.locale,
            self.umask,
            self.home,
            self.source_date_epoch.unwrap_or("unset"),
            if self.env_reversed {
                "reversed"
            } else {
                "sorted"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varied_differs_from_baseline_in_every_dimension() {
        let (b, v) = (Variation::baseline(), Variation::varied());
        for d in Dimension::ALL {
            let one = Variation::baseline_but(d);
            assert_ne!(one, b, "{d}");
            assert_ne!(one, v, "{d}");
        }
        assert!(b.path.len() < v.path.len(), "the varied copy is deeper");
    }
}
