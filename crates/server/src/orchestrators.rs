//! The orchestrators allowed to call this provider, and which of them signed a request.

use provisio_protocol::signature::{SignatureError, SigningKeys};

/// One orchestrator: who it is and the secrets it signs with.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    pub name: String,
    pub label: String,
    keys: SigningKeys,
}

impl Orchestrator {
    pub fn new(name: impl Into<String>, label: Option<String>, secrets: &[String]) -> Self {
        let name = name.into();
        Self { label: label.unwrap_or_else(|| name.clone()), name, keys: SigningKeys::new(secrets) }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Orchestrators {
    list: Vec<Orchestrator>,
}

impl Orchestrators {
    pub fn new(list: Vec<Orchestrator>) -> Self {
        Self { list }
    }

    /// Whether any signing secret is configured at all; without one every signed call answers 500.
    pub fn has_secrets(&self) -> bool {
        self.list.iter().any(|o| !o.keys.is_empty())
    }

    pub fn all(&self) -> &[Orchestrator] {
        &self.list
    }

    /// The orchestrator whose secret signed this request.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
        now: i64,
        tolerance_secs: u64,
    ) -> Result<&Orchestrator, SignatureError> {
        let mut last = SignatureError::Mismatch;
        for orchestrator in &self.list {
            match orchestrator.keys.verify(header, body, now, tolerance_secs) {
                Ok(()) => return Ok(orchestrator),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}
