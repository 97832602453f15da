//! Delivering the outbox: every instance runs one worker. It claims due events (each held by one
//! instance at a time, for a lease), posts each signed to `[events] url` with its id as
//! `webhook-id`, and records the outcome: delivered on any `2xx`; otherwise due again after a pause
//! that starts at 1 s and doubles up to 1 h, until the event is older than `max_age_hours`, when it
//! is marked failed (listed by `provisio admin events list --failed`, sent again by `retry`).

use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    clock::Clock,
    connector::{EventsSettings, Transport},
    store::{
        Store, StoreError,
        events::{self as sql, OutboxEvent},
    },
};

/// One attempt to deliver one event.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim holds an event: longer than any attempt, so no two instances send it at once.
const LEASE: Duration = Duration::from_secs(60);
/// How often an idle worker looks for due events.
const POLL: Duration = Duration::from_millis(250);
/// Events claimed, and sent concurrently, at a time.
const BATCH: i64 = 32;
const CONCURRENCY: usize = 8;
const FIRST_PAUSE_MS: i64 = 1000;
const MAX_PAUSE_MS: i64 = 3_600_000;

/// The worker's settings and connections.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Store,
    clock: Clock,
    settings: EventsSettings,
    transport: Transport,
}

impl Delivery {
    pub fn new(store: Store, clock: Clock, settings: EventsSettings) -> Result<Self, String> {
        let transport = Transport::new(settings.signer.clone(), ATTEMPT_TIMEOUT)?;
        Ok(Self { store, clock, settings, transport })
    }

    /// Runs until the store closes.
    pub async fn run(self: Arc<Self>) {
        loop {
            match self.deliver_due().await {
                Ok(0) => tokio::time::sleep(POLL).await,
                Ok(_) => {}
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "event delivery could not read the outbox");
                    tokio::time::sleep(POLL * 4).await;
                }
            }
        }
    }

    /// Claims the due events and delivers them; how many were claimed.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now_ms = self.clock.now_ms();
        if !self.store.read(move |conn| sql::any_due(conn, now_ms)).await? {
            self.publish_counts().await;
            return Ok(0);
        }
        let backend = self.store.backend();
        let lease_until = now_ms + LEASE.as_millis() as i64;
        let claimed = self
            .store
            .write_atomic(move |conn| sql::claim_due(conn, backend, now_ms, lease_until, BATCH))
            .await?;
        let count = claimed.len();
        stream::iter(claimed)
            .for_each_concurrent(CONCURRENCY, |event| async move {
                if let Err(e) = self.deliver(&event).await {
                    tracing::warn!(event = %event.id, error = %e, "could not record a delivery outcome");
                }
            })
            .await;
        self.publish_counts().await;
        Ok(count)
    }

    async fn deliver(&self, event: &OutboxEvent) -> Result<(), StoreError> {
        let body = body(event).to_string();
        let answer = self
            .transport
            .post_once(&self.settings.url, &event.id, body.as_bytes(), ATTEMPT_TIMEOUT)
            .await;
        let failure = match answer {
            Ok(answer) if answer.status.is_success() => None,
            Ok(answer) => Some(format!("answered {}", answer.status)),
            Err(reason) => Some(reason),
        };
        let (sequence, now) = (event.sequence, self.clock.now());
        match failure {
            None => {
                crate::metrics::outbox_delivery("delivered");
                self.store.write_each(move |conn| sql::mark_delivered(conn, sequence, now)).await
            }
            Some(error) => {
                crate::metrics::outbox_delivery("failed_attempt");
                tracing::info!(event = %event.id, attempts = event.attempts + 1, %error, "event not delivered; will retry");
                let next = self.clock.now_ms() + pause_ms(event.attempts);
                let give_up_before = now - self.settings.max_age.as_secs() as i64;
                self.store
                    .write_each(move |conn| {
                        sql::mark_attempt_failed(conn, sequence, next, &error, give_up_before)
                    })
                    .await
            }
        }
    }

    async fn publish_counts(&self) {
        if let Ok(counts) = self.store.read(sql::counts).await {
            crate::metrics::outbox_counts(&counts);
        }
    }
}

/// The pause after `attempts` failed attempts: 1 s, doubling, capped at 1 h.
fn pause_ms(attempts: i64) -> i64 {
    FIRST_PAUSE_MS.saturating_mul(1 << attempts.clamp(0, 22)).min(MAX_PAUSE_MS)
}

/// The body the SaaS receives.
pub fn body(event: &OutboxEvent) -> Value {
    let created_at = OffsetDateTime::from_unix_timestamp(event.created_at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    json!({
        "id": event.id,
        "sequence": event.sequence,
        "type": event.kind,
        "created_at": created_at,
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_a_second_to_an_hour() {
        assert_eq!(pause_ms(0), 1000);
        assert_eq!(pause_ms(1), 2000);
        assert_eq!(pause_ms(5), 32_000);
        assert_eq!(pause_ms(12), 3_600_000);
        assert_eq!(pause_ms(1000), 3_600_000);
    }
}
