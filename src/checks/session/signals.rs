//! How the revocation trials hand off to one another: a trial's signals
//! (app replays done, passwords hashed) and the countdown that releases the
//! shared accounts once every replay is done.

use super::*;

/// Says when the app-route replays of `kind`'s trials are over (sent
/// `true` once, by the replays or when the trials end, whichever is first).
pub(super) async fn app_done(ctx: &Ctx, kind: Revocation) -> Arc<tokio::sync::watch::Sender<bool>> {
    signal(ctx, kind, "app-done").await
}

/// Says when the password work (sign-ups, sign-ins) of `kind`'s trials is
/// over (sent `true` once every trial has revoked, or when the trials end).
pub(super) async fn passwords_done(
    ctx: &Ctx,
    kind: Revocation,
) -> Arc<tokio::sync::watch::Sender<bool>> {
    signal(ctx, kind, "passwords-done").await
}

pub(super) async fn signal(
    ctx: &Ctx,
    kind: Revocation,
    what: &str,
) -> Arc<tokio::sync::watch::Sender<bool>> {
    let key = format!("{}.{what}", kind.check_id());
    ctx.once(&key, || async { Ok(tokio::sync::watch::channel(false).0) })
        .await
        .expect("making a channel cannot fail")
}

/// Sends `true` when dropped: the trials ended, on any path.
pub(super) struct Done(pub(super) Arc<tokio::sync::watch::Sender<bool>>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// Sends `true` once each of its tickets is punched (or dropped).
pub(super) struct Countdown {
    pub(super) left: AtomicU32,
    pub(super) done: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Countdown {
    pub(super) fn ticket(&self) -> Ticket<'_> {
        Ticket {
            countdown: self,
            punched: AtomicBool::new(false),
        }
    }
}

/// One trial's share of a [`Countdown`]: punched when its password work is
/// done, or when it ends on any path.
pub(super) struct Ticket<'a> {
    pub(super) countdown: &'a Countdown,
    pub(super) punched: AtomicBool,
}

impl Ticket<'_> {
    pub(super) fn punch(&self) {
        if !self.punched.swap(true, Ordering::AcqRel)
            && self.countdown.left.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.countdown.done.send_replace(true);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.punch();
    }
}

/// What a trial tells the checks waiting on it.
#[derive(Clone, Copy)]
pub(super) struct Signals<'a> {
    /// Punched once the trial has revoked (its sign-ups, sign-ins and
    /// priming are done).
    pub(super) passwords: &'a Ticket<'a>,
    /// Sent once trial 1's app-route replays are over.
    pub(super) app_done: &'a tokio::sync::watch::Sender<bool>,
}

/// Lets other checks' sign-ins go once the password work of every kind in
/// `kinds` is done, then gives up the check's shared leases once their
/// app-route replays are over.
pub(super) async fn release_after_replays(ctx: &Ctx, kinds: &[Revocation]) {
    for kind in kinds {
        let mut done = passwords_done(ctx, *kind).await.subscribe();
        // An error means the sender is gone: nothing more will be sent.
        let _ = done.wait_for(|d| *d).await;
    }
    ctx.release_passwords();
    for kind in kinds {
        let mut done = app_done(ctx, *kind).await.subscribe();
        let _ = done.wait_for(|d| *d).await;
    }
    ctx.release_shared();
}
