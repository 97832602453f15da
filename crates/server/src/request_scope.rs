//! What the code serving one request knows about it, and what it leaves for the HTTP layer to
//! answer with, in one task-local set by the HTTP layer for the request's life: its id and whether
//! changes are reported as events (read by the audit log), and, written while it runs, the
//! orchestrator whose signature it carried (for the access log) and every rate limit it counted
//! against (for the `RateLimit` headers). No HTTP types: the domain reads it too.

use std::cell::RefCell;

use crate::rate_limit::Allowance;

tokio::task_local! {
    static SCOPE: Scope;
}

struct Scope {
    id: String,
    /// `[events]` is configured: changes also write to the events outbox.
    emit_events: bool,
    signer: RefCell<Option<String>>,
    allowances: RefCell<Vec<Allowance>>,
}

/// Runs `work` as the request `id`; answers its output and where the caller stands with each
/// limit it counted against, in the order counted.
pub async fn run<F: std::future::Future>(
    id: String,
    emit_events: bool,
    work: F,
) -> (F::Output, Vec<Allowance>) {
    let scope =
        Scope { id, emit_events, signer: RefCell::default(), allowances: RefCell::default() };
    SCOPE
        .scope(scope, async {
            let output = work.await;
            (output, SCOPE.with(|s| s.allowances.take()))
        })
        .await
}

/// The current request's id and whether events are on; `None` outside a request.
pub fn request() -> Option<(String, bool)> {
    SCOPE.try_with(|s| (s.id.clone(), s.emit_events)).ok()
}

/// Records the orchestrator whose signature the current request carried.
pub fn note_signer(name: &str) {
    let _ = SCOPE.try_with(|s| *s.signer.borrow_mut() = Some(name.to_string()));
}

/// Records where the current request stands with a limit (a limit counted twice, by a retried
/// take, is reported as it stands last). Outside a request (tests, fuzzing) nobody is told.
pub fn note_allowance(allowance: Allowance) {
    let _ = SCOPE.try_with(|s| {
        let mut seen = s.allowances.borrow_mut();
        seen.retain(|a| a.scope != allowance.scope);
        seen.push(allowance);
    });
}

/// The orchestrator whose signature the current request carried, so far.
pub fn signer() -> Option<String> {
    SCOPE.try_with(|s| s.signer.borrow().clone()).ok().flatten()
}
