//! Runs the checks of one group and records their results. A check is a future that is only polled
//! when the check is selected, so a skipped check sends nothing.

use std::future::Future;

use super::{
    Group,
    expect::Expect,
    report::{CheckResult, Outcome, Scope, Tag},
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

/// Which checks a run leaves out (reported as skipped, never sent).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Skip the checks of provisio's own choices ([`Scope::Provisio`]).
    pub strict_protocol_only: bool,
    /// Skip the checks carrying any of these tags.
    pub skip_tags: Vec<Tag>,
}

impl Selection {
    /// Why a check of `scope` with `tags` is skipped; `None` when it runs.
    fn skip_reason(&self, scope: Scope, tags: &[Tag]) -> Option<String> {
        if scope == Scope::Provisio && self.strict_protocol_only {
            return Some("skipped: provisio's own choice (--strict-protocol-only)".to_string());
        }
        tags.iter()
            .find(|t| self.skip_tags.contains(t))
            .map(|tag| format!("skipped: assumes {} (--skip-tag {})", tag.assumes(), tag.as_str()))
    }
}

/// Collects the results of one group.
pub struct Recorder<'a> {
    group: Group,
    selection: &'a Selection,
    schemas: &'a Schemas,
    results: Vec<CheckResult>,
}

impl<'a> Recorder<'a> {
    pub fn new(group: Group, selection: &'a Selection, schemas: &'a Schemas) -> Self {
        Self { group, selection, schemas, results: Vec::new() }
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
        self.check_tagged(name, scope, &[], expected, run).await;
    }

    /// [`Recorder::check`] for a check that also carries `tags`.
    pub async fn check_tagged(
        &mut self,
        name: &str,
        scope: Scope,
        tags: &[Tag],
        expected: impl Into<String>,
        run: impl Future<Output = Verdict>,
    ) {
        let id = format!("{}.{name}", self.group.as_str());
        let expected = expected.into();
        let (outcome, got) = match self.selection.skip_reason(scope, tags) {
            Some(reason) => (Outcome::Skip, reason),
            None => match run.await {
                Ok(got) => (Outcome::Pass, got),
                Err(got) => (Outcome::Fail, got),
            },
        };
        let group = self.group.as_str().to_string();
        let tags = tags.to_vec();
        self.results.push(CheckResult { id, group, scope, tags, expected, got, outcome });
    }

    /// A check of one answer against an [`Expect`]; `reply` may do set-up calls before it.
    pub async fn expect(
        &mut self,
        name: &str,
        scope: Scope,
        expect: Expect,
        reply: impl Future<Output = Result<Reply, String>>,
    ) {
        self.expect_tagged(name, scope, &[], expect, reply).await;
    }

    /// [`Recorder::expect`] for a check that also carries `tags`.
    pub async fn expect_tagged(
        &mut self,
        name: &str,
        scope: Scope,
        tags: &[Tag],
        expect: Expect,
        reply: impl Future<Output = Result<Reply, String>>,
    ) {
        let schemas = self.schemas;
        let expected = expect.describe();
        let run = async move { expect.verify(schemas, &reply.await?) };
        self.check_tagged(name, scope, tags, expected, run).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one check of each kind under `selection`: (id, outcome, got) of each.
    fn run(selection: &Selection) -> Vec<(String, Outcome, String)> {
        let schemas = Schemas::load().unwrap();
        let mut rec = Recorder::new(Group::Resources, selection, &schemas);
        let counter = std::cell::Cell::new(0);
        let ran = &counter;
        let pass = move || async move {
            ran.set(ran.get() + 1);
            Ok("fine".to_string())
        };
        block_on(async {
            rec.check("plain", Scope::Protocol, "x", pass()).await;
            rec.check("choice", Scope::Provisio, "x", pass()).await;
            rec.check_tagged("builtin", Scope::Protocol, &[Tag::Builtin], "x", pass()).await;
            rec.check_tagged("both", Scope::Provisio, &[Tag::Builtin], "x", pass()).await;
        });
        let results = rec.finish();
        assert_eq!(
            ran.get(),
            results.iter().filter(|r| r.outcome != Outcome::Skip).count(),
            "a skipped check is never run"
        );
        results.into_iter().map(|r| (r.id, r.outcome, r.got)).collect()
    }

    fn block_on(work: impl Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(work);
    }

    fn outcomes(results: &[(String, Outcome, String)]) -> Vec<Outcome> {
        results.iter().map(|r| r.1).collect()
    }

    #[test]
    fn skip_tags_skip_the_tagged_checks_and_say_why() {
        use Outcome::{Pass, Skip};
        assert_eq!(outcomes(&run(&Selection::default())), [Pass, Pass, Pass, Pass]);

        let builtin = Selection { skip_tags: vec![Tag::Builtin], ..Selection::default() };
        let results = run(&builtin);
        assert_eq!(outcomes(&results), [Pass, Pass, Skip, Skip]);
        assert_eq!(results[2].0, "resources.builtin");
        assert_eq!(
            results[2].2,
            "skipped: assumes provisio's built-in backend (--skip-tag builtin)"
        );

        let strict = Selection { strict_protocol_only: true, ..Selection::default() };
        assert_eq!(outcomes(&run(&strict)), [Pass, Skip, Pass, Skip]);

        let both = Selection { strict_protocol_only: true, skip_tags: vec![Tag::Builtin] };
        let results = run(&both);
        assert_eq!(outcomes(&results), [Pass, Skip, Skip, Skip]);
        assert!(results[3].2.contains("--strict-protocol-only"), "{}", results[3].2);
    }
}
