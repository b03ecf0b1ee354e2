//! What a run reads and keeps of answers' bodies. One answer's body is read
//! up to `budget.max_body_bytes`; of it the caller keeps either the whole
//! body ([`Keep::Body`]: a parse or a search needs it) or only what its
//! record shows ([`Keep::Record`]: the rest is read and discarded, never
//! accumulated); and the whole bodies held at once across the run are
//! counted against `budget.max_kept_bytes` by a [`Ledger`], so that a target
//! answering megabytes to every request cannot make a run hold gigabytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::redact::Redactor;

/// Bodies longer than this are cut in reports.
const MAX_RECORDED_BODY: usize = 4096;

/// The head of a body a [`Keep::Record`] read holds for its record. A body
/// no longer than this is recorded exactly as a kept one is (redacted as a
/// whole: secret JSON keys masked, then every known secret); a longer one
/// only from this head. Ample for the small answers of metered routes,
/// small enough that requests in flight hold little.
pub const RECORD_WINDOW: usize = 64 * 1024;

/// Dropped from the end of a redacted head before it is cut for the record:
/// a known secret that the head's end cut in two is no longer found whole,
/// and its first part would survive there. Longer than any credential a run
/// holds (passwords, the service key, session tokens, and their encodings).
const TAIL_GUARD: usize = 8 * 1024;

/// What of an answer's body the caller keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// The whole body (up to `budget.max_body_bytes`), counted against the
    /// run's [`Ledger`] while it is held.
    #[default]
    Body,
    /// Status and headers only: the body is still read to its end (and an
    /// answer longer than `budget.max_body_bytes` is still an error), but
    /// only the head its record needs is held, and `Observed::body` is
    /// empty.
    Record,
}

/// The bytes of answers' bodies a run holds at once, and the most it may.
#[derive(Debug)]
pub struct Ledger {
    cap: u64,
    held: AtomicU64,
}

impl Ledger {
    pub fn new(cap: u64) -> Self {
        Ledger {
            cap,
            held: AtomicU64::new(0),
        }
    }

    /// The most the run may hold (`budget.max_kept_bytes`).
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// The bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    /// Takes `n` more bytes, or says how many are held when that would pass
    /// the cap.
    fn take(&self, n: u64) -> Result<(), u64> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|total| *total <= self.cap)
            })
            .map(|_| ())
    }

    fn give_back(&self, n: u64) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Bytes taken from a ledger, given back when dropped.
#[derive(Debug)]
struct Taken {
    ledger: Arc<Ledger>,
    bytes: u64,
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.ledger.give_back(self.bytes);
    }
}

/// An answer's body as kept: clones share it, and its bytes count against
/// the run's [`Ledger`] until the last clone is dropped. Reads as `[u8]`.
#[derive(Clone, Default)]
pub struct KeptBody(Option<Arc<(Vec<u8>, Taken)>>);

impl std::ops::Deref for KeptBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], |(bytes, _)| bytes.as_slice())
    }
}

/// The length only: a body may hold anything.
impl std::fmt::Debug for KeptBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeptBody({} bytes)", self.len())
    }
}

/// Why a body was not read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// It is longer than `budget.max_body_bytes`.
    TooLong,
    /// Keeping more of it would pass `budget.max_kept_bytes`, with this
    /// many bytes held by the rest of the run (this body's not counted).
    OverKept { held: u64 },
}

/// What was read of one answer's body.
#[derive(Debug)]
pub(super) struct Read {
    /// The body as kept ([`Keep::Body`]); empty for [`Keep::Record`].
    pub(super) kept: KeptBody,
    /// [`Keep::Record`]: the first [`RECORD_WINDOW`] bytes.
    head: Vec<u8>,
    /// The bytes read, kept or not.
    length: u64,
    pub(super) cut: Option<Cut>,
}

impl Read {
    /// What the record is made from, and whether that is the whole body.
    pub(super) fn for_record(&self) -> (&[u8], bool) {
        let bytes: &[u8] = if self.kept.is_empty() {
            &self.head
        } else {
            &self.kept
        };
        let whole = self.cut.is_none() && bytes.len() as u64 == self.length;
        (bytes, whole)
    }
}

/// Reads `response`'s body to its end or to `limit` bytes, keeping what
/// `keep` says; the whole bodies kept are taken from `ledger`, and a body
/// that would pass its cap is read no further.
pub(super) async fn read(
    response: &mut reqwest::Response,
    keep: Keep,
    limit: u64,
    ledger: &Arc<Ledger>,
) -> Result<Read, reqwest::Error> {
    let mut kept = Vec::new();
    let mut taken = Taken {
        ledger: ledger.clone(),
        bytes: 0,
    };
    let mut head = Vec::new();
    let mut length: u64 = 0;
    let mut cut = None;
    while let Some(chunk) = response.chunk().await? {
        let room = usize::try_from(limit.saturating_sub(length)).unwrap_or(usize::MAX);
        let chunk = if chunk.len() > room {
            cut = Some(Cut::TooLong);
            chunk.slice(..room)
        } else {
            chunk
        };
        match keep {
            Keep::Body => {
                if let Err(held) = ledger.take(chunk.len() as u64) {
                    let held = held.saturating_sub(taken.bytes);
                    cut = Some(Cut::OverKept { held });
                    break;
                }
                taken.bytes += chunk.len() as u64;
                kept.extend_from_slice(&chunk);
            }
            Keep::Record => {
                let room = RECORD_WINDOW.saturating_sub(head.len());
                head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
        }
        length += chunk.len() as u64;
        if cut.is_some() {
            break;
        }
    }
    let kept = if kept.is_empty() {
        KeptBody::default()
    } else {
        KeptBody(Some(Arc::new((kept, taken))))
    };
    Ok(Read {
        kept,
        head,
        length,
        cut,
    })
}

/// The body as recorded, and whether it was cut. A whole body is redacted
/// as a whole (secret JSON keys masked, then every known secret), then cut
/// to [`MAX_RECORDED_BODY`]. Of a body read only in part (or longer than
/// what was held of it), at most [`RECORD_WINDOW`] bytes are redacted: a
/// head is no JSON document, so only known secrets are replaced, and the
/// last [`TAIL_GUARD`] bytes of the result are dropped before the cut.
pub(super) fn recorded(r: &Redactor, bytes: &[u8], whole: bool) -> (Option<String>, bool) {
    if whole {
        return recorded_text(&r.body(&String::from_utf8_lossy(bytes)));
    }
    let head = &bytes[..bytes.len().min(RECORD_WINDOW)];
    let mut text = r.scrub(&String::from_utf8_lossy(head));
    let mut keep = text.len().saturating_sub(TAIL_GUARD);
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    let (text, _) = recorded_text(&text);
    (text, !bytes.is_empty())
}

/// Cuts an already redacted body to the recorded size.
fn recorded_text(text: &str) -> (Option<String>, bool) {
    if text.is_empty() {
        return (None, false);
    }
    if text.len() <= MAX_RECORDED_BODY {
        return (Some(text.to_owned()), false);
    }
    let mut cut = MAX_RECORDED_BODY;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (Some(text[..cut].to_owned()), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_never_passes_its_cap_and_a_dropped_body_gives_its_bytes_back() {
        let ledger = Arc::new(Ledger::new(100));
        ledger.take(60).unwrap();
        assert_eq!(ledger.take(41), Err(60));
        let body = KeptBody(Some(Arc::new((
            vec![0; 40],
            Taken {
                ledger: ledger.clone(),
                bytes: 40,
            },
        ))));
        ledger.take(40).unwrap();
        assert_eq!(ledger.held(), 100);
        let copy = body.clone();
        drop(body);
        assert_eq!(ledger.held(), 100, "a clone still holds it");
        assert_eq!(copy.len(), 40);
        drop(copy);
        assert_eq!(ledger.held(), 60);
        assert_eq!(ledger.take(u64::MAX), Err(60), "no overflow");
    }

    #[test]
    fn a_whole_body_is_recorded_as_before_and_a_head_loses_its_tail() {
        let r = Redactor::new();
        r.learn_str("secret-token-123456");
        let json = br#"{"token":"unknown-value","note":"secret-token-123456"}"#;
        let (text, cut) = recorded(&r, json, true);
        let text = text.unwrap();
        assert!(!cut);
        assert!(!text.contains("unknown-value") && !text.contains("secret-token"));
        // A long head is recorded from its start, cut.
        let head = "a".repeat(RECORD_WINDOW * 2).into_bytes();
        let (text, cut) = recorded(&r, &head, false);
        assert_eq!(text.unwrap().len(), MAX_RECORDED_BODY);
        assert!(cut);
        // A head that replacements shrank, whose end cuts a known secret in
        // two: that end is dropped, not recorded.
        let mut head = b"xyz".to_vec();
        for _ in 0..1000 {
            head.extend_from_slice(b"secret-token-123456");
        }
        head.extend_from_slice(b"secret-tok");
        assert!(
            r.scrub(&String::from_utf8_lossy(&head))
                .ends_with("secret-tok")
        );
        let (text, cut) = recorded(&r, &head, false);
        assert!(!text.is_some_and(|t| t.contains("secret-tok")));
        assert!(cut);
        // A head shorter than the guard records nothing, and says it was cut.
        let (text, cut) = recorded(&r, b"abc secret-tok", false);
        assert_eq!((text, cut), (None, true));
        let (text, cut) = recorded(&r, b"", false);
        assert_eq!((text, cut), (None, false));
    }
}
