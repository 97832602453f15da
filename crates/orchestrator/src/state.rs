//! The orchestrator CLI's memory between calls (`.provisio-orchestrator.json`): the last code, its
//! PKCE verifier, tokens and resource ids, so calls chain without copy-paste. It holds live
//! credentials, so it is written with owner-only permissions.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Reply;

pub const DEFAULT_STATE_FILE: &str = ".provisio-orchestrator.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is not valid JSON: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("cannot write state file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl State {
    /// The saved state, or an empty one when the file does not exist yet.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StateError::Parse { path: path.into(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StateError::Read { path: path.into(), source }),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write = |source| StateError::Write { path: path.into(), source };
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        use std::io::Write;
        options.open(path).and_then(|mut f| f.write_all(&bytes)).map_err(write)
    }

    /// Remembers an account request's answer: its `oauth` code with the PKCE verifier the request
    /// was sent with, or the tokens of a `credentials` answer.
    pub fn remember_account_answer(&mut self, reply: &Reply, verifier: Option<String>) {
        let Some(body) = &reply.json else { return };
        if let Some(code) = body["oauth"]["code"].as_str() {
            self.code = Some(code.to_string());
            self.code_verifier = verifier;
        }
        self.absorb_tokens(&body["credentials"]["bearer"]);
    }

    /// Remembers a successful token answer; the code it redeemed is spent.
    pub fn remember_token_answer(&mut self, reply: &Reply) {
        if let (true, Some(body)) = (reply.is_success(), &reply.json) {
            self.absorb_tokens(body);
            self.code = None;
            self.code_verifier = None;
        }
    }

    /// Remembers what a token answer carried.
    pub fn absorb_tokens(&mut self, body: &serde_json::Value) {
        let text = |v: &serde_json::Value| v.as_str().map(String::from);
        if let Some(t) = text(&body["access_token"]) {
            self.access_token = Some(t);
        }
        if let Some(t) = text(&body["refresh_token"]) {
            self.refresh_token = Some(t);
        }
        if let Some(org) = text(&body["account"]["id"]) {
            self.organization_id = Some(org);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_file_is_empty() {
        let dir = std::env::temp_dir().join(format!("provisio-state-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        assert_eq!(State::load(&dir).unwrap(), State::default());
        let mut state = State { code: Some("c".into()), ..State::default() };
        state.absorb_tokens(
            &serde_json::json!({"access_token":"a","refresh_token":"r","account":{"id":"org"}}),
        );
        state.save(&dir).unwrap();
        assert_eq!(State::load(&dir).unwrap(), state);
        std::fs::remove_file(&dir).unwrap();
    }
}
