//! The probe's patience: a 429 is waited out for the checks that test
//! something else, within bounds, and never for the others. And what it
//! reads and keeps of answers' bodies is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flareproof::probe::{Keep, Probe, ProbeError, Redactor, Req};
use flareproof::target::Budget;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const BUDGET: Budget = Budget {
    max_requests: 20,
    max_rps: 50,
    max_body_bytes: 8 * 1024 * 1024,
    max_kept_bytes: None,
};

/// A server that answers 429 (`Retry-After: 1`) `refusals` times, then 200.
async fn spent_bucket(refusals: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(refusals)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

fn probe() -> Probe {
    Probe::new(BUDGET, Arc::new(Redactor::new())).unwrap()
}

fn get(server: &MockServer) -> Req {
    Req::get(
        url::Url::parse(&format!("{}/api/posts", server.uri())).unwrap(),
        "list posts",
    )
}

#[tokio::test]
async fn a_patient_probe_waits_out_retry_after_and_says_so() {
    let server = spent_bucket(1).await;
    let patient = probe().patient(Duration::from_secs(3), Duration::from_secs(10));
    let started = Instant::now();
    let observed = patient.send(get(&server)).await.unwrap();
    assert_eq!(observed.status, 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert!(
        observed
            .exchange
            .label
            .contains("resent after waiting 1100 ms out a 429"),
        "{}",
        observed.exchange.label
    );
    assert_eq!(patient.waits(), vec![Duration::from_millis(1100)]);
    assert_eq!(
        patient.governor().sent_count(),
        2,
        "both sends pass the governor"
    );
}

#[tokio::test]
async fn a_plain_probe_hands_the_429_to_the_caller() {
    let server = spent_bucket(1).await;
    let observed = probe().send(get(&server)).await.unwrap();
    assert_eq!(observed.status, 429);
}

#[tokio::test]
async fn patience_is_bounded_per_request_and_in_all() {
    // Refused more often than a request may be resent: the third 429 is an
    // error naming the request, with every 429 as evidence, never an answer.
    let server = spent_bucket(10).await;
    let patient = probe().patient(Duration::from_secs(3), Duration::from_secs(10));
    let err = patient.send(get(&server)).await.unwrap_err();
    assert_eq!(patient.waits().len(), 2);
    match &err {
        ProbeError::StillRateLimited {
            label,
            exchanges,
            waited_ms,
        } => {
            assert_eq!(label, "list posts");
            assert_eq!(*waited_ms, 2200);
            assert_eq!(exchanges.len(), 3);
            assert!(
                exchanges
                    .iter()
                    .all(|e| e.response.as_ref().unwrap().status == 429)
            );
        }
        other => panic!("expected StillRateLimited, got {other:?}"),
    }
    assert!(
        err.to_string().contains("still answered 429 after 3 sends"),
        "{err}"
    );
    // A wait that would end past the overall bound is not started.
    let server = spent_bucket(1).await;
    let patient = probe().patient(Duration::from_secs(3), Duration::from_millis(500));
    let err = patient.send(get(&server)).await.unwrap_err();
    assert!(
        matches!(&err, ProbeError::StillRateLimited { exchanges, .. } if exchanges.len() == 1),
        "{err:?}"
    );
    assert!(patient.waits().is_empty());
}

/// Patience is counted from each request's first send, not from when the
/// patient probe was made (the run's start): a check that starts late in
/// the run and meets a spent bucket waits it out like one that starts at
/// once.
#[tokio::test]
async fn patience_is_counted_from_the_request_not_from_the_run_start() {
    let server = spent_bucket(1).await;
    let patient = probe().patient(Duration::from_secs(3), Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let observed = patient.send(get(&server)).await.unwrap();
    assert_eq!(observed.status, 200);
    assert_eq!(patient.waits(), vec![Duration::from_millis(1100)]);
}

/// A target controls `Retry-After`: the largest number it can send is
/// clamped, never an overflow, and a patient probe does not wait for it.
#[tokio::test]
async fn a_huge_retry_after_is_clamped_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", u64::MAX.to_string()))
        .mount(&server)
        .await;
    let observed = probe().send(get(&server)).await.unwrap();
    assert_eq!(
        observed.retry_after_s(),
        Some(flareproof::probe::MAX_WIRE_DELAY_S)
    );
    let patient = probe().patient(Duration::from_secs(1), Duration::from_secs(10));
    let started = std::time::Instant::now();
    let err = patient.send(get(&server)).await.unwrap_err();
    assert!(
        matches!(err, ProbeError::StillRateLimited { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A body longer than `budget.max_body_bytes` is read only that far: the
/// request is an error carrying the cut exchange, never an answer a check
/// judges.
#[tokio::test]
async fn a_body_over_the_cap_is_cut_and_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(64 * 1024)))
        .mount(&server)
        .await;
    let budget = Budget {
        max_body_bytes: 1024,
        ..BUDGET
    };
    let probe = Probe::new(budget, Arc::new(Redactor::new())).unwrap();
    match probe.send(get(&server)).await.unwrap_err() {
        ProbeError::BodyTooLarge {
            limit, exchange, ..
        } => {
            assert_eq!(limit, 1024);
            assert!(exchange.response.unwrap().body_truncated);
        }
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
    // Within the cap, the body is read whole.
    let budget = Budget {
        max_body_bytes: 64 * 1024,
        ..BUDGET
    };
    let probe = Probe::new(budget, Arc::new(Redactor::new())).unwrap();
    assert_eq!(
        probe.send(get(&server)).await.unwrap().body.len(),
        64 * 1024
    );
}

/// A request that keeps only its record reads the whole body (a longer one
/// than the cap is still an error) but holds none of it: its record shows
/// the body's start, cut.
#[tokio::test]
async fn a_record_only_request_keeps_no_body_whatever_its_size() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("y".repeat(1024 * 1024)))
        .mount(&server)
        .await;
    let probe = probe();
    let observed = probe.send(get(&server).keep(Keep::Record)).await.unwrap();
    assert_eq!(observed.status, 200);
    assert!(observed.body.is_empty());
    let response = observed.exchange.response.unwrap();
    assert!(response.body_truncated);
    assert!(response.body.unwrap().starts_with("yyyy"));
    assert_eq!(probe.ledger().held(), 0);
    let budget = Budget {
        max_body_bytes: 1024,
        ..BUDGET
    };
    let probe = Probe::new(budget, Arc::new(Redactor::new())).unwrap();
    let err = probe
        .send(get(&server).keep(Keep::Record))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::BodyTooLarge { .. }), "{err:?}");
}

/// Whole bodies held at once are capped by `budget.max_kept_bytes`: one
/// that would pass it is an error with the cut exchange, never an answer,
/// and a body dropped gives its bytes back.
#[tokio::test]
async fn bodies_held_past_the_run_cap_are_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("z".repeat(600)))
        .mount(&server)
        .await;
    let budget = Budget {
        max_body_bytes: 1000,
        max_kept_bytes: Some(1000),
        ..BUDGET
    };
    let probe = Probe::new(budget, Arc::new(Redactor::new())).unwrap();
    let held = probe.send(get(&server)).await.unwrap();
    assert_eq!(held.body.len(), 600);
    assert_eq!(probe.ledger().held(), 600);
    let err = probe.send(get(&server)).await.unwrap_err();
    match &err {
        ProbeError::OverKept {
            cap,
            held,
            exchange,
            ..
        } => {
            assert_eq!((*cap, *held), (1000, 600));
            assert!(exchange.response.as_ref().unwrap().body_truncated);
        }
        other => panic!("expected OverKept, got {other:?}"),
    }
    let text = flareproof::error_chain(&err);
    assert!(text.contains("budget.max_kept_bytes"), "{text}");
    // A clone shares the body; dropping both gives the bytes back.
    let copy = held.clone();
    drop(held);
    assert_eq!(probe.ledger().held(), 600);
    drop(copy);
    assert_eq!(probe.ledger().held(), 0);
    assert_eq!(probe.send(get(&server)).await.unwrap().body.len(), 600);
}
