//! What a run found: one result per check, a table for people, JSON for scripts.

use comfy_table::{Table, presets::ASCII_FULL_CONDENSED};
use serde::Serialize;

/// Whether a check tests the protocol itself or only a choice provisio made where the spec leaves
/// one open (skipped with `--strict-protocol-only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Protocol,
    Provisio,
}

/// What else a check assumes of the provider, beyond its [`Scope`]; `--skip-tag` skips the checks
/// carrying a tag and reports them as skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tag {
    /// Tests provisio's built-in backend (its analytics keys, its dashboard pages, its billing
    /// backends), which a provider whose accounts and resources live elsewhere (provisio in connector
    /// mode, or any other provider) does not have.
    Builtin,
}

impl Tag {
    pub const ALL: [Self; 1] = [Self::Builtin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
        }
    }

    /// What a check with this tag assumes, for the `got` of a skipped one.
    pub const fn assumes(self) -> &'static str {
        match self {
            Self::Builtin => "provisio's built-in backend",
        }
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|t| t.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown tag {name:?} (one of: {})", names.join(", "))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Stable id, `<group>.<name>`.
    pub id: String,
    pub group: String,
    pub scope: Scope,
    /// Further assumptions (`builtin`); empty for most checks.
    pub tags: Vec<Tag>,
    pub expected: String,
    /// What the provider answered (and, on failure, why it does not match).
    pub got: String,
    pub outcome: Outcome,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub base_url: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub checks: Vec<CheckResult>,
}

/// Longest `got` shown in the table; the JSON report keeps everything.
const TABLE_CELL_CHARS: usize = 140;

impl Report {
    pub fn new(base_url: &str, checks: Vec<CheckResult>) -> Self {
        let count = |o| checks.iter().filter(|c| c.outcome == o).count();
        Self {
            base_url: base_url.to_string(),
            passed: count(Outcome::Pass),
            failed: count(Outcome::Fail),
            skipped: count(Outcome::Skip),
            checks,
        }
    }

    /// Ids of the checks that failed, in run order.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.ids(Outcome::Fail)
    }

    pub fn ids(&self, outcome: Outcome) -> Vec<&str> {
        self.checks.iter().filter(|c| c.outcome == outcome).map(|c| c.id.as_str()).collect()
    }

    /// `N passed, M failed`: the line scripts look for.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }

    /// The results as a table: check, expected, got, result.
    pub fn table(&self) -> String {
        let mut table = Table::new();
        table.load_style(ASCII_FULL_CONDENSED).set_header(["check", "expected", "got", "result"]);
        for check in &self.checks {
            let result = match check.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            let mut id = match check.scope {
                Scope::Protocol => check.id.clone(),
                Scope::Provisio => format!("{} [provisio]", check.id),
            };
            for tag in &check.tags {
                id.push_str(&format!(" [{}]", tag.as_str()));
            }
            table.add_row([id, check.expected.clone(), clip(&check.got), result.to_string()]);
        }
        table.to_string()
    }
}

impl Report {
    /// The results for a log or a pipe: every failed check in full (its id, what was expected and
    /// everything the provider answered, never clipped), then how many checks of each group passed.
    /// Skipped checks are left to the caller's count of them.
    pub fn compact(&self) -> String {
        let mut out = String::new();
        for check in self.checks.iter().filter(|c| c.outcome == Outcome::Fail) {
            out.push_str(&format!("FAIL {}\n", label(check)));
            out.push_str(&format!("  expected: {}\n", hang(&check.expected)));
            out.push_str(&format!("  got:      {}\n", hang(&check.got)));
        }
        // Groups in run order, each with its passes (0 when none passed).
        let mut groups: Vec<(&str, usize)> = Vec::new();
        for check in &self.checks {
            let passed = usize::from(check.outcome == Outcome::Pass);
            match groups.iter_mut().find(|(group, _)| *group == check.group) {
                Some((_, count)) => *count += passed,
                None => groups.push((&check.group, passed)),
            }
        }
        if !groups.is_empty() {
            let counts: Vec<String> =
                groups.iter().map(|(group, count)| format!("{group} {count}")).collect();
            out.push_str(&format!("passed by group: {}\n", counts.join(", ")));
        }
        out
    }
}

/// A check's id as the table and the compact form show it: `[provisio]` and its tags after it.
fn label(check: &CheckResult) -> String {
    let mut id = match check.scope {
        Scope::Protocol => check.id.clone(),
        Scope::Provisio => format!("{} [provisio]", check.id),
    };
    for tag in &check.tags {
        id.push_str(&format!(" [{}]", tag.as_str()));
    }
    id
}

/// Indents the lines after the first under a `  got:      ` label.
fn hang(text: &str) -> String {
    text.trim_end().replace('\n', "\n            ")
}

impl Report {
    /// The results as JUnit XML, one test case per check (CI systems show these as test reports).
    pub fn junit(&self, suite: &str) -> String {
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
            xml_escape(suite),
            self.checks.len(),
            self.failed,
            self.skipped
        );
        for check in &self.checks {
            xml.push_str(&format!(
                "<testcase classname=\"{}\" name=\"{}\">",
                xml_escape(&check.group),
                xml_escape(&check.id)
            ));
            let detail = xml_escape(&format!("expected: {}\ngot: {}", check.expected, check.got));
            match check.outcome {
                Outcome::Pass => {}
                Outcome::Fail => xml.push_str(&format!(
                    "<failure message=\"{}\">{detail}</failure>",
                    xml_escape(&clip(&check.got))
                )),
                Outcome::Skip => {
                    xml.push_str(&format!("<skipped message=\"{}\"/>", xml_escape(&check.got)))
                }
            }
            xml.push_str("</testcase>\n");
        }
        xml.push_str("</testsuite>\n</testsuites>\n");
        xml
    }
}

/// Text and attribute values for XML.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Shortens a cell to [`TABLE_CELL_CHARS`] characters.
pub(crate) fn clip(text: &str) -> String {
    if text.chars().count() <= TABLE_CELL_CHARS {
        return text.to_string();
    }
    let mut short: String = text.chars().take(TABLE_CELL_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, outcome: Outcome) -> CheckResult {
        CheckResult {
            id: id.into(),
            group: "g".into(),
            scope: Scope::Protocol,
            tags: Vec::new(),
            expected: "200".into(),
            got: "x".repeat(500),
            outcome,
        }
    }

    #[test]
    fn tags_parse_and_show_in_the_table() {
        assert_eq!(Tag::parse("builtin"), Ok(Tag::Builtin));
        assert!(Tag::parse("connector").unwrap_err().contains("one of: builtin"));
        let mut tagged = result("g.a", Outcome::Skip);
        tagged.tags = vec![Tag::Builtin];
        let report = Report::new("http://x", vec![tagged]);
        assert!(report.table().contains("g.a [builtin]"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][0]["tags"], serde_json::json!(["builtin"]));
    }

    #[test]
    fn junit_has_one_case_per_check_escaped() {
        let mut failed = result("g.b", Outcome::Fail);
        failed.got = "<b>\"&\u{1}".into();
        let report = Report::new(
            "http://x",
            vec![result("g.a", Outcome::Pass), failed, result("g.c", Outcome::Skip)],
        );
        let xml = report.junit("suite & co");
        assert!(
            xml.contains(r#"<testsuite name="suite &amp; co" tests="3" failures="1" skipped="1">"#)
        );
        assert!(xml.contains(r#"<testcase classname="g" name="g.a"></testcase>"#));
        assert!(xml.contains("<failure message=\"&lt;b&gt;&quot;&amp;\u{fffd}\">"));
        assert!(xml.contains("<skipped message="));
        assert_eq!(xml.matches("<testcase").count(), 3);
    }

    #[test]
    fn compact_shows_failures_in_full_and_counts_passes() {
        let mut failed = result("g.b", Outcome::Fail);
        failed.scope = Scope::Provisio;
        failed.got = format!("{}\nsecond line", "y".repeat(500));
        let mut other = result("h.a", Outcome::Pass);
        other.group = "h".into();
        let report = Report::new(
            "http://x",
            vec![result("g.a", Outcome::Pass), failed, result("g.c", Outcome::Skip), other],
        );
        let compact = report.compact();
        assert_eq!(
            compact,
            format!(
                "FAIL g.b [provisio]\n  expected: 200\n  got:      {}\n            second line\n\
                 passed by group: g 1, h 1\n",
                "y".repeat(500)
            )
        );
        assert!(!compact.contains("g.a") && !compact.contains("g.c"), "passes and skips counted");
        let all_pass = Report::new("http://x", vec![result("g.a", Outcome::Pass)]);
        assert_eq!(all_pass.compact(), "passed by group: g 1\n");
    }

    #[test]
    fn counts_summary_and_table() {
        let report = Report::new(
            "http://x",
            vec![
                result("g.a", Outcome::Pass),
                result("g.b", Outcome::Fail),
                result("g.c", Outcome::Skip),
            ],
        );
        assert_eq!(report.summary(), "1 passed, 1 failed");
        assert_eq!(report.skipped, 1);
        assert_eq!(report.failed_ids(), ["g.b"]);
        let table = report.table();
        assert!(table.contains("g.b") && table.contains("FAIL"));
        assert!(!table.contains(&"x".repeat(TABLE_CELL_CHARS + 1)));
    }
}
