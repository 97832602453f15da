//! Runs the checks of one group and records their results. A check is a future that is only polled
//! when the check is selected, so a skipped check sends nothing.

use std::future::Future;

use super::{
    Group,
    expect::Expect,
    report::{CheckResult, Outcome, Scope},
    schemas::Schemas,
};
use crate::Reply;

/// What a check's future yields: `Ok(got)` when the provider did what was expected, `Err(got)`
/// (with the reason) when it did not.
pub type Verdict = Result<String, String>;

/// A verdict whose `got` reads the same either way.
pub fn judge(pass: bool, got: String) -> Verdict {
    if pass { Ok(got) } else { Err(got) }
}

/// Collects the results of one group.
pub struct Recorder<'a> {
    group: Group,
    strict_protocol_only: bool,
    schemas: &'a Schemas,
    results: Vec<CheckResult>,
}

impl<'a> Recorder<'a> {
    pub fn new(group: Group, strict_protocol_only: bool, schemas: &'a Schemas) -> Self {
        Self { group, strict_protocol_only, schemas, results: Vec::new() }
    }

    pub fn finish(self) -> Vec<CheckResult> {
        self.results
    }

    /// A check whose whole verdict is computed by `run`.
    pub async fn check(
        &mut self,
        name: &str,
        scope: Scope,
        expected: impl Into<String>,
        run: impl Future<Output = Verdict>,
    ) {
        let id = format!("{}.{name}", self.group.as_str());
        let expected = expected.into();
        let (outcome, got) = if scope == Scope::Provisio && self.strict_protocol_only {
            (Outcome::Skip, "skipped: provisio's own choice (--strict-protocol-only)".to_string())
        } else {
            match run.await {
                Ok(got) => (Outcome::Pass, got),
                Err(got) => (Outcome::Fail, got),
            }
        };
        let group = self.group.as_str().to_string();
        self.results.push(CheckResult { id, group, scope, expected, got, outcome });
    }

    /// A check of one answer against an [`Expect`]; `reply` may do set-up calls before it.
    pub async fn expect(
        &mut self,
        name: &str,
        scope: Scope,
        expect: Expect,
        reply: impl Future<Output = Result<Reply, String>>,
    ) {
        let schemas = self.schemas;
        let expected = expect.describe();
        self.check(name, scope, expected, async move { expect.verify(schemas, &reply.await?) })
            .await;
    }
}
