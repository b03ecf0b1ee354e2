use super::*;
use serde_json::json;

fn declared() -> DeclaredSettings {
    DeclaredSettings {
        compatibility_date: Some("2025-09-01".into()),
        compatibility_flags: vec!["nodejs_compat".into()],
        bindings: vec![DeclaredBinding {
            name: "DB".into(),
            kind: "d1".into(),
            target: Some("db-1".into()),
            value: None,
        }],
        ..DeclaredSettings::default()
    }
}

fn deployed() -> DeployedSettings {
    DeployedSettings {
        compatibility_date: Some("2025-09-01".into()),
        compatibility_flags: vec!["nodejs_compat".into()],
        bindings: vec![DeployedBinding {
            name: "DB".into(),
            kind: "d1".into(),
            target: Some("db-1".into()),
            value: None,
        }],
    }
}

#[test]
fn equal_settings_match_and_each_change_is_named() {
    assert!(compare_settings(&declared(), &deployed()).matches());
    let mut d = deployed();
    d.compatibility_flags
        .push("streams_enable_constructors".into());
    d.bindings.push(DeployedBinding {
        name: "LEAK".into(),
        kind: "service".into(),
        target: Some("exfil".into()),
        value: None,
    });
    d.bindings[0].target = Some("db-2".into());
    d.compatibility_date = Some("2024-01-01".into());
    let c = compare_settings(&declared(), &d);
    let text = c.differences.join("\n");
    for needle in [
        "compatibility date is 2024-01-01",
        "`streams_enable_constructors`",
        "`LEAK`",
        "points at db-2",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    d.bindings.clear();
    let c = compare_settings(&declared(), &d);
    assert!(
        c.differences
            .iter()
            .any(|s| s.contains("`DB` (d1) is missing"))
    );
}

#[test]
fn values_are_compared_when_declared_and_secrets_never() {
    let bind = |name: &str, kind: &str, value: Option<Value>| DeployedBinding {
        name: name.into(),
        kind: kind.into(),
        target: None,
        value,
    };
    let declare = |name: &str, kind: &str, value: Option<Value>| DeclaredBinding {
        name: name.into(),
        kind: kind.into(),
        target: None,
        value,
    };
    let declared = DeclaredSettings {
        bindings: vec![
            declare("ORIGIN", "plain_text", Some(json!("https://a.test"))),
            declare("CONF", "json", Some(json!({ "a": [1, 2] }))),
            declare("FREE", "plain_text", None),
            declare("KEY", "secret_text", None),
        ],
        ..DeclaredSettings::default()
    };
    let deployed = |origin: &str, conf: Value| DeployedSettings {
        bindings: vec![
            bind("ORIGIN", "plain_text", Some(json!(origin))),
            bind("CONF", "json", Some(conf)),
            bind("FREE", "plain_text", Some(json!("anything"))),
            bind("KEY", "secret_text", None),
        ],
        ..DeployedSettings::default()
    };
    let c = compare_settings(
        &declared,
        &deployed("https://a.test", json!({ "a": [1, 2] })),
    );
    assert!(c.verified(), "{c:?}");
    assert_eq!(c.uncompared.len(), 1, "FREE is shown: {c:?}");
    let c = compare_settings(
        &declared,
        &deployed("https://b.test", json!({ "a": [2, 1] })),
    );
    let text = c.differences.join("\n");
    assert!(
        text.contains("`ORIGIN` (plain_text) is \"https://b.test\""),
        "{text}"
    );
    assert!(text.contains("`CONF` (json) is {\"a\":[2,1]}"), "{text}");
    // A value declared for a secret is refused, never printed.
    let mut d = declared.clone();
    d.bindings[3].value = Some(json!("s3cr3t-value"));
    let c = compare_settings(&d, &deployed("https://a.test", json!({ "a": [1, 2] })));
    assert!(c.matches() && !c.verified());
    assert!(!format!("{c:?}").contains("s3cr3t-value"));
}

#[test]
fn script_settings_rules() {
    let none = DeclaredSettings::default();
    let deployed = |placement: Value, cache: Value| DeployedScriptSettings {
        placement: Some(placement),
        limits: Some(json!({ "cpu_ms": 50 })),
        cache_options: Some(cache),
        usage_model: Some("standard".into()),
    };
    assert!(compare_script_settings(&none, &deployed(json!({}), json!({}))).verified());
    assert!(
        compare_script_settings(&none, &DeployedScriptSettings::default()).verified(),
        "nothing declared, nothing on"
    );
    let c = compare_script_settings(&none, &deployed(json!({ "mode": "smart" }), json!({})));
    assert_eq!(
        c.differences,
        vec!["undeclared placement {\"mode\":\"smart\"}"]
    );
    let c = compare_script_settings(
        &none,
        &deployed(
            json!({}),
            json!({ "enabled": true, "cross_version_cache": true }),
        ),
    );
    assert_eq!(c.differences.len(), 2, "{c:?}");
    let declared = DeclaredSettings {
        placement: Some(json!({ "mode": "smart" })),
        limits: Some(json!({ "cpu_ms": 50, "subrequests": 100 })),
        cache_options: Some(json!({ "enabled": true })),
        usage_model: Some("unbound".into()),
        ..DeclaredSettings::default()
    };
    let c = compare_script_settings(
        &declared,
        &deployed(json!({ "mode": "smart" }), json!({ "enabled": true })),
    );
    let text = c.differences.join("\n");
    assert!(
        text.contains("limits.subrequests is unset, declared 100"),
        "{text}"
    );
    assert!(
        text.contains("usage model is standard, declared unbound"),
        "{text}"
    );
    assert_eq!(c.differences.len(), 2, "{text}");
    // Declared, not reported: unobservable, never a match.
    let c = compare_script_settings(&declared, &DeployedScriptSettings::default());
    assert!(!c.verified());
    assert_eq!(c.unobservable.len(), 2, "{c:?}");
}

#[test]
fn a_shown_value_is_capped_and_masked() {
    let v = json!(format!("https://u:pw-XYZ@h.test/{}", "x".repeat(300)));
    let shown = shown_value(&v);
    assert!(!shown.contains("pw-XYZ"), "{shown}");
    assert!(shown.chars().count() < VALUE_SHOWN + 40, "{shown}");
    assert!(shown.contains("bytes)"), "{shown}");
}

#[test]
fn a_declared_value_reads_from_toml_as_json() {
    #[derive(Deserialize)]
    struct Doc {
        bindings: Vec<DeclaredBinding>,
    }
    let doc: Doc = toml::from_str(
        r#"bindings = [
  { name = "ORIGIN", type = "plain_text", value = "https://a.test" },
  { name = "CONF", type = "json", value = { tiers = ["free"], strict = true } },
  { name = "KEY", type = "secret_text" },
]"#,
    )
    .unwrap();
    assert_eq!(doc.bindings[0].value, Some(json!("https://a.test")));
    assert_eq!(
        doc.bindings[1].value,
        Some(json!({ "tiers": ["free"], "strict": true }))
    );
    assert_eq!(doc.bindings[2].value, None);
}
