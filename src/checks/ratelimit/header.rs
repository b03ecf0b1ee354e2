//! The `RateLimit` / `RateLimit-Policy` field syntax
//! (draft-ietf-httpapi-ratelimit-headers).

#[derive(Debug, Clone, Copy)]
pub(super) enum FieldKind {
    /// `RateLimit-Policy`: items with `q` (required) and `w`.
    Policy,
    /// `RateLimit`: items with `r` (required) and `t`.
    Limit,
}

/// Checks a `RateLimit` / `RateLimit-Policy` value against the structured
/// field syntax of draft-ietf-httpapi-ratelimit-headers: a list of items
/// (string or token), each with integer parameters.
pub(super) fn check_ratelimit_field(value: &str, kind: FieldKind) -> Result<(), String> {
    let (required, optional) = match kind {
        FieldKind::Policy => ("q", "w"),
        FieldKind::Limit => ("r", "t"),
    };
    for member in value.split(',') {
        let member = member.trim();
        let mut parts = member.split(';');
        let item = parts.next().unwrap_or("").trim();
        let bare_item_ok = (item.len() >= 2
            && item.starts_with('"')
            && item.ends_with('"')
            && !item[1..item.len() - 1].contains('"'))
            || (!item.is_empty()
                && item
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '*')
                && item
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(c)));
        if !bare_item_ok {
            return Err(format!(
                "has an item `{item}` that is neither a string nor a token"
            ));
        }
        let mut has_required = false;
        for param in parts {
            let (key, val) = param.trim().split_once('=').unwrap_or((param.trim(), "?1"));
            let key = key.trim();
            if key == required || key == optional {
                if val.trim().parse::<u64>().is_err() {
                    return Err(format!("has `{key}={val}`, not a non-negative integer"));
                }
                if key == "w" && val.trim() == "0" {
                    return Err("has `w=0`".to_owned());
                }
                has_required |= key == required;
            } else if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c))
            {
                return Err(format!("has a malformed parameter `{key}`"));
            }
        }
        if !has_required {
            return Err(format!("has an item without `{required}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratelimit_fields_follow_the_draft_syntax() {
        assert!(check_ratelimit_field(r#""free";q=60;w=60"#, FieldKind::Policy).is_ok());
        assert!(check_ratelimit_field(r#""free";r=0;t=12"#, FieldKind::Limit).is_ok());
        assert!(
            check_ratelimit_field(r#"default;q=10, "burst";q=100;w=1"#, FieldKind::Policy).is_ok()
        );
        assert!(check_ratelimit_field("60", FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";q=-1"#, FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";w=60"#, FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";q=1;w=0"#, FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";r=soon"#, FieldKind::Limit).is_err());
    }

    proptest::proptest! {
        /// Any bytes a target sends are judged without a panic.
        #[test]
        fn any_value_is_judged_without_panicking(value in "\\PC{0,64}") {
            let _ = check_ratelimit_field(&value, FieldKind::Policy);
            let _ = check_ratelimit_field(&value, FieldKind::Limit);
        }

        /// Well-formed members, as the draft writes them, are accepted.
        #[test]
        fn well_formed_members_are_accepted(
            members in proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", 0u64..100_000, 1u64..3600, proptest::bool::ANY), 1..4)
        ) {
            let policy: Vec<String> = members
                .iter()
                .map(|(name, q, w, quoted)| {
                    let item = if *quoted { format!("\"{name}\"") } else { name.clone() };
                    format!("{item};q={q};w={w}")
                })
                .collect();
            proptest::prop_assert!(check_ratelimit_field(&policy.join(", "), FieldKind::Policy).is_ok());
            let limit: Vec<String> = members
                .iter()
                .map(|(name, r, t, _)| format!("\"{name}\";r={r};t={t}"))
                .collect();
            proptest::prop_assert!(check_ratelimit_field(&limit.join(", "), FieldKind::Limit).is_ok());
        }
    }
}
