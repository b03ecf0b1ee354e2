use super::*;

fn record() -> LiveRecord {
    LiveRecord {
        account_id: "acc".into(),
        script: "auth".into(),
        deployment: Readable::Read(DeploymentRecord {
            id: Some("dep-1".into()),
            versions: vec![LiveVersionRecord {
                version_id: "v1".into(),
                percentage: 100.0,
                modules: Readable::Read(ModulesRecord {
                    main_module: Some("worker.js".into()),
                    modules: vec![ModuleRecord {
                        name: "worker.js".into(),
                        sha256: "aa".repeat(32),
                        content_type: Some("application/javascript+module".into()),
                    }],
                }),
                settings: Readable::Read(VersionSettingsRecord {
                    compatibility_date: Some("2025-09-01".into()),
                    compatibility_flags: vec!["nodejs_compat".into()],
                    bindings: vec![
                        BindingRecord {
                            name: "SECRET".into(),
                            kind: "secret_text".into(),
                            target: None,
                            value_sha256: None,
                        },
                        BindingRecord {
                            name: "TRUSTED_ORIGIN".into(),
                            kind: "plain_text".into(),
                            target: None,
                            value_sha256: Some(sha256_hex(b"\"https://a.test\"")),
                        },
                    ],
                }),
            }],
        }),
        observers: Readable::Read(ObserversRecord {
            tail_consumers: vec![],
            streaming_tail_consumers: vec![],
            logpush: false,
            log_destinations: vec![],
            trace_destinations: vec![],
            observability: false,
            tails: vec![],
        }),
        script_settings: Readable::Read(ScriptSettingsRecord {
            placement: None,
            limits: Some(serde_json::json!({ "cpu_ms": 50 })),
            cache_options: None,
            usage_model: Some("standard".into()),
        }),
        ingress: IngressRecord {
            routes: Readable::Read(vec![]),
            custom_domains: Readable::Read(vec![DomainRecord {
                hostname: "auth.example.test".into(),
                service: "auth".into(),
                environment: Some("production".into()),
                zone_name: Some("example.test".into()),
            }]),
            workers_dev: Readable::Read(WorkersDevRecord {
                enabled: false,
                previews_enabled: false,
            }),
            account_subdomain: None,
            zone_routes: None,
        },
    }
}

fn deployment(r: &mut LiveRecord) -> &mut DeploymentRecord {
    match &mut r.deployment {
        Readable::Read(d) => d,
        Readable::Unreadable(_) => unreachable!(),
    }
}

fn settings(r: &mut LiveRecord) -> &mut VersionSettingsRecord {
    match &mut deployment(r).versions[0].settings {
        Readable::Read(s) => s,
        Readable::Unreadable(_) => unreachable!(),
    }
}

fn modules(r: &mut LiveRecord) -> &mut ModulesRecord {
    match &mut deployment(r).versions[0].modules {
        Readable::Read(m) => m,
        Readable::Unreadable(_) => unreachable!(),
    }
}

fn only_change(attested: &LiveRecord, now: &LiveRecord) -> Drift {
    let drift = LiveRecord::drift(attested, now);
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(drift[0].is_change(), "{drift:#?}");
    drift[0].clone()
}

#[test]
fn equal_records_have_no_drift_and_survive_a_json_round_trip() {
    let a = record();
    assert!(LiveRecord::drift(&a, &a.clone()).is_empty());
    let text = serde_json::to_string(&a).unwrap();
    let back: LiveRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back, a);
    assert!(LiveRecord::drift(&back, &a).is_empty());
    assert!(LiveRecord::notes(&back, &a).is_empty());
}

#[test]
fn a_version_with_traffic_not_attested_is_a_change_naming_it() {
    let a = record();
    let mut n = record();
    let mut new = deployment(&mut n).versions[0].clone();
    new.version_id = "v2".into();
    new.percentage = 10.0;
    deployment(&mut n).versions[0].percentage = 90.0;
    deployment(&mut n).versions.push(new);
    let d = only_change(&a, &n);
    assert_eq!(d.part, "version v2");
    assert!(d.detail.contains("10%") && d.detail.contains("not among the attested"));
    // The share of the attested version moved: a note, not drift.
    let notes = LiveRecord::notes(&a, &n).join("\n");
    assert!(notes.contains("version v1 receives 90%"), "{notes}");
}

#[test]
fn a_new_deployment_of_the_same_versions_is_a_note_not_drift() {
    let a = record();
    let mut n = record();
    deployment(&mut n).id = Some("dep-2".into());
    assert!(LiveRecord::drift(&a, &n).is_empty());
    assert_eq!(
        LiveRecord::notes(&a, &n),
        vec!["the active deployment is dep-2 (attested: dep-1)".to_owned()]
    );
}

#[test]
fn each_module_change_is_one_drift_naming_version_and_module() {
    let a = record();
    let mut n = record();
    modules(&mut n).modules[0].sha256 = "bb".repeat(32);
    let d = only_change(&a, &n);
    assert_eq!(d.part, "version v1 module `worker.js`");
    assert!(d.detail.contains(&"bb".repeat(32)), "{}", d.detail);

    let mut n = record();
    modules(&mut n).modules[0].content_type = Some("application/javascript".into());
    let d = only_change(&a, &n);
    assert!(d.detail.contains("content type"), "{}", d.detail);

    let mut n = record();
    modules(&mut n).modules.push(ModuleRecord {
        name: "extra.js".into(),
        sha256: "cc".repeat(32),
        content_type: None,
    });
    assert_eq!(only_change(&a, &n).part, "version v1 module `extra.js`");

    let mut n = record();
    modules(&mut n).main_module = Some("other.js".into());
    assert_eq!(only_change(&a, &n).part, "version v1 main module");
}

#[test]
fn each_settings_change_is_one_drift_naming_the_setting() {
    let a = record();
    let mut n = record();
    settings(&mut n).bindings[1].value_sha256 = Some(sha256_hex(b"\"https://evil.test\""));
    let d = only_change(&a, &n);
    assert_eq!(d.part, "version v1 binding `TRUSTED_ORIGIN`.value_sha256");

    let mut n = record();
    settings(&mut n).bindings.push(BindingRecord {
        name: "EXFIL".into(),
        kind: "service".into(),
        target: Some("collector".into()),
        value_sha256: None,
    });
    let d = only_change(&a, &n);
    assert_eq!(d.part, "version v1 binding `EXFIL`");
    assert!(d.detail.contains("added") && d.detail.contains("collector"));

    let mut n = record();
    settings(&mut n).bindings.remove(0);
    let d = only_change(&a, &n);
    assert_eq!(d.part, "version v1 binding `SECRET`");
    assert!(d.detail.contains("removed"));

    let mut n = record();
    settings(&mut n)
        .compatibility_flags
        .push("streams_enable_constructors".into());
    assert_eq!(
        only_change(&a, &n).part,
        "version v1 compatibility flag `streams_enable_constructors`"
    );

    let mut n = record();
    settings(&mut n).compatibility_date = Some("2026-01-01".into());
    assert_eq!(only_change(&a, &n).part, "version v1 compatibility_date");

    let mut n = record();
    if let Readable::Read(s) = &mut n.script_settings {
        s.placement = Some(serde_json::json!({ "mode": "smart" }));
    }
    let d = only_change(&a, &n);
    assert_eq!(d.part, "script settings.placement");
    assert!(d.detail.contains("smart"), "{}", d.detail);
}

#[test]
fn each_observer_and_ingress_change_is_one_drift_naming_it() {
    let a = record();
    let mut n = record();
    if let Readable::Read(o) = &mut n.observers {
        o.tail_consumers.push("log-collector".into());
    }
    let d = only_change(&a, &n);
    assert_eq!(d.part, "observers.tail_consumers");
    assert!(d.detail.contains("added \"log-collector\""), "{}", d.detail);

    let mut n = record();
    if let Readable::Read(o) = &mut n.observers {
        o.observability = true;
    }
    assert_eq!(only_change(&a, &n).part, "observers.observability");

    let mut n = record();
    n.ingress.routes = Readable::Read(vec![RouteRecord {
        pattern: "auth.example.test/*".into(),
        script: Some("auth".into()),
    }]);
    let d = only_change(&a, &n);
    assert_eq!(d.part, "ingress.routes");
    assert!(d.detail.contains("auth.example.test/*") && d.detail.contains("added"));

    let mut n = record();
    n.ingress.custom_domains = Readable::Read(vec![]);
    let d = only_change(&a, &n);
    assert!(d.detail.contains("auth.example.test") && d.detail.contains("removed"));

    let mut n = record();
    n.ingress.workers_dev = Readable::Read(WorkersDevRecord {
        enabled: true,
        previews_enabled: false,
    });
    assert_eq!(only_change(&a, &n).part, "ingress.workers_dev.enabled");
}

#[test]
fn an_unreadable_part_is_could_not_tell_never_unchanged() {
    let a = record();
    let mut n = record();
    n.observers = Readable::Unreadable("HTTP 403".into());
    let d = LiveRecord::drift(&a, &n);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, DriftKind::CouldNotTell);
    assert_eq!(d[0].part, "observers");
    assert!(d[0].detail.contains("HTTP 403"));
    // Unreadable on both sides is not "equal".
    let mut b = record();
    b.observers = Readable::Unreadable("HTTP 403".into());
    let d = LiveRecord::drift(&b, &n);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, DriftKind::CouldNotTell);
    // Unreadable when attested, readable now: could not tell either.
    let d = LiveRecord::drift(&b, &a);
    assert_eq!(d[0].kind, DriftKind::CouldNotTell);
    assert!(d[0].detail.contains("attestation could not record"));

    let mut n = record();
    deployment(&mut n).versions[0].modules = Readable::Unreadable("HTTP 500".into());
    let d = LiveRecord::drift(&a, &n);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].kind, d[0].part.as_str()),
        (DriftKind::CouldNotTell, "version v1")
    );

    let error = ApiError::Unauthorized {
        url: "https://api.test/x".into(),
        status: 403,
        detail: String::new(),
    };
    let n = LiveRecord::unreadable("acc", "auth", None, &error);
    let d = LiveRecord::drift(&a, &n);
    assert_eq!(d.len(), 1, "one reason, not one per part: {d:#?}");
    assert_eq!(
        (d[0].kind, d[0].part.as_str()),
        (DriftKind::CouldNotTell, "deployment")
    );
    assert!(
        d[0].detail.contains("Workers Scripts Read"),
        "{}",
        d[0].detail
    );
}

#[test]
fn a_deployment_that_serves_no_version_is_could_not_tell_not_unchanged() {
    let a = record();
    let mut n = record();
    deployment(&mut n).versions.clear();
    let d = LiveRecord::drift(&a, &n);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, DriftKind::CouldNotTell);
}

#[test]
fn another_account_or_script_is_could_not_tell() {
    let a = record();
    let mut n = record();
    n.account_id = "other".into();
    let d = LiveRecord::drift(&a, &n);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, DriftKind::CouldNotTell);
    assert!(d[0].detail.contains("other"));
}

#[test]
fn a_binding_records_a_value_digest_never_a_value_and_a_secret_by_name() {
    let plain = binding(&DeployedBinding {
        name: "ORIGIN".into(),
        kind: "plain_text".into(),
        target: None,
        value: Some(serde_json::json!("https://a.test")),
    });
    assert_eq!(
        plain.value_sha256.as_deref(),
        Some(sha256_hex(b"\"https://a.test\"").as_str())
    );
    let secret = binding(&DeployedBinding {
        name: "KEY".into(),
        kind: "secret_text".into(),
        target: Some("leak".into()),
        value: Some(serde_json::json!("hunter2")),
    });
    assert_eq!((secret.target, secret.value_sha256), (None, None));
    let text = serde_json::to_string(&plain).unwrap();
    assert!(!text.contains("https://a.test"), "{text}");
    // Key order does not change a json value's digest.
    let x: Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":3}}"#).unwrap();
    let y: Value = serde_json::from_str(r#"{"a":{"c":3,"d":2},"b":1}"#).unwrap();
    assert_eq!(canonical(&x), canonical(&y));
}
