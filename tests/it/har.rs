//! `exchanges.har`: HAR 1.2, checked against the vendored `har-schema`
//! 2.0.0 JSON Schema (tests/schemas/har-schema-2.0.0); one entry per
//! recorded exchange, in the order sent, naming its checks and label;
//! what a run recorded, and no more. (The snapshot is in `report`, the
//! no-secret check in `echo`.)

use flareproof::model::{
    CheckId, Evidence, Exchange, Header, HttpRequest, HttpResponse, Report, Status,
};
use flareproof::report::{Format, har};

use crate::schema::every_status_report;

const HAR_SCHEMAS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/schemas/har-schema-2.0.0"
);

/// The vendored schema: `har.json` and the 17 files it refers to, each
/// registered under the URI its relative `$id` resolves to.
pub fn validator() -> jsonschema::Validator {
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(format!("{HAR_SCHEMAS}/{name}")).unwrap()).unwrap()
    };
    let mut options = jsonschema::options();
    for entry in std::fs::read_dir(HAR_SCHEMAS).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") && name != "har.json" {
            let resource = jsonschema::Resource::from_contents(read(&name)).unwrap();
            options = options.with_resource(format!("json-schema:///{name}"), resource);
        }
    }
    options
        .build(&read("har.json"))
        .expect("the HAR schema compiles")
}

fn errors(validator: &jsonschema::Validator, har: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(har)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

fn exchange(label: &str, at_ms: u64, url: &str, response: Option<HttpResponse>) -> Exchange {
    Exchange {
        label: label.into(),
        request: HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: vec![Header {
                name: "cookie".into(),
                value: "__Secure-better-auth.session_token=[redacted]; theme=dark".into(),
            }],
            body: None,
        },
        error: response.is_none().then(|| "timed out after 10 s".into()),
        response,
        at_ms,
        elapsed_ms: 7,
    }
}

/// `every_status_report` (one exchange shared by its five checks) plus a
/// check with three exchanges of its own: one with a query string and a
/// body that was not UTF-8, one that got no response, one sent first.
fn report_with_exchanges() -> Report {
    let mut report = every_status_report();
    let mut scope = report.checks[1].clone();
    scope.id = CheckId::new("scope.bola-read").unwrap();
    scope.status = Status::Pass;
    scope.evidence = vec![
        Evidence::Exchange(exchange(
            "read b's post as a",
            40,
            "http://127.0.0.1:8787/api/posts/7?as=a&q=%20x",
            Some(HttpResponse {
                status: 404,
                headers: vec![Header {
                    name: "content-type".into(),
                    value: "application/octet-stream".into(),
                }],
                body: Some("PK\u{FFFD}\u{FFFD}binary".into()),
                body_truncated: true,
            }),
        )),
        Evidence::Exchange(exchange(
            "read as nobody",
            41,
            "http://127.0.0.1:8787/x",
            None,
        )),
        Evidence::Exchange(exchange(
            "sent first",
            3,
            "http://127.0.0.1:8787/first",
            None,
        )),
    ];
    report.checks.push(scope);
    report
}

fn har_of(report: &Report) -> serde_json::Value {
    serde_json::from_slice(&har::render(report)).expect("the HAR is JSON")
}

#[test]
fn the_har_validates_against_the_har_1_2_schema() {
    let validator = validator();
    for report in [every_status_report(), report_with_exchanges()] {
        let har = har_of(&report);
        let errors = errors(&validator, &har);
        assert!(
            errors.is_empty(),
            "exchanges.har is not HAR 1.2: {errors:#?}"
        );
        assert_eq!(har["log"]["version"], "1.2");
        assert_eq!(har["log"]["creator"]["name"], "flareproof");
    }
    // The validator is not vacuous: what HAR requires is checked.
    let mut broken = har_of(&report_with_exchanges());
    broken["log"]["entries"][0]["request"]
        .as_object_mut()
        .unwrap()
        .remove("headers");
    assert!(
        !validator.is_valid(&broken),
        "an entry without request headers"
    );
    let mut broken = har_of(&report_with_exchanges());
    broken["log"]["entries"][1]["startedDateTime"] = "yesterday".into();
    assert!(
        !validator.is_valid(&broken),
        "a startedDateTime that is no date"
    );
    let mut broken = har_of(&report_with_exchanges());
    broken["log"]["entries"][2]["response"]["status"] = "200".into();
    assert!(!validator.is_valid(&broken), "a status that is a string");
}

#[test]
fn one_entry_per_recorded_exchange_in_the_order_sent() {
    let report = report_with_exchanges();
    let har = har_of(&report);
    let entries = har["log"]["entries"].as_array().unwrap();
    // The shared exchange is recorded under five checks: one request.
    let recorded: Vec<&Exchange> = {
        let mut seen: Vec<&Exchange> = Vec::new();
        for e in report.checks.iter().flat_map(|c| &c.evidence) {
            if let Evidence::Exchange(x) = e
                && !seen.contains(&x)
            {
                seen.push(x);
            }
        }
        seen
    };
    assert_eq!(recorded.len(), 4);
    assert_eq!(entries.len(), recorded.len());
    let labels: Vec<&str> = entries
        .iter()
        .map(|e| e["_flareproof"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "sent first",
            "sign in as free",
            "read b's post as a",
            "read as nobody"
        ]
    );
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["startedDateTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2026-11-23T00:00:00.003Z",
            "2026-11-23T00:00:00.012Z",
            "2026-11-23T00:00:00.040Z",
            "2026-11-23T00:00:00.041Z"
        ]
    );

    // The shared exchange names every check that recorded it.
    let shared = &entries[1];
    let checks: Vec<(&str, &str)> = shared["_flareproof"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("cookie.case-0", "pass"),
            ("cookie.case-1", "fail"),
            ("cookie.case-2", "warn"),
            ("cookie.case-3", "error"),
            ("cookie.case-4", "skip"),
        ]
    );
    assert_eq!(
        shared["comment"],
        "cookie.case-0, cookie.case-1, cookie.case-2, cookie.case-3, cookie.case-4: sign in as free"
    );
    // As recorded: the body, the redacted values, the Set-Cookie as a cookie.
    assert_eq!(
        shared["request"]["postData"]["text"],
        r#"{"email":"free@flareproof.test","password":"[redacted]"}"#
    );
    assert_eq!(shared["response"]["cookies"][0]["value"], "[redacted]");
    assert_eq!(shared["response"]["cookies"][0]["httpOnly"], true);
    assert_eq!(shared["time"], 80);
    assert_eq!(shared["timings"]["wait"], 80);
    assert_eq!(shared["response"]["statusText"], "OK");

    let binary = &entries[2];
    assert_eq!(binary["request"]["queryString"][1]["value"], " x");
    assert_eq!(
        binary["request"]["cookies"][0]["name"],
        "__Secure-better-auth.session_token"
    );
    let content = &binary["response"]["content"];
    assert_eq!(content["text"], "PK\u{FFFD}\u{FFFD}binary");
    assert_eq!(content["mimeType"], "application/octet-stream");
    let note = content["comment"].as_str().unwrap();
    assert!(
        note.contains("not valid UTF-8") && note.contains("cut"),
        "{note}"
    );
    assert_eq!(binary["_flareproof"]["body_truncated"], true);

    let failed = &entries[3];
    assert_eq!(failed["response"]["status"], 0);
    assert_eq!(failed["_error"], "timed out after 10 s");
}

#[test]
fn the_har_is_deterministic_and_written_as_exchanges_har() {
    let report = report_with_exchanges();
    assert_eq!(har::render(&report), har::render(&report.clone()));
    assert_eq!(Format::Har.file_name(), "exchanges.har");
    assert_eq!("har".parse::<Format>(), Ok(Format::Har));
    // A report with no exchange is an empty log, still valid.
    let mut empty = every_status_report();
    empty.checks.iter_mut().for_each(|c| c.evidence.clear());
    let har = har_of(&empty);
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 0);
    assert!(validator().is_valid(&har));
}
