//! The checks, in the order a real provisio would make its calls: each one names the contract's
//! rule it holds the SaaS to. A check that needs what an earlier one should have made (a user, a
//! resource) is skipped, saying which, when that one failed.

use provisio_orchestrator::conformance::{CheckResult, Outcome, Scope};
use provisio_server::connector::{CreatedUser, Project, User};
use serde_json::{Value, json};

use super::wire::{Answer, Saas, Signing};

/// Every check, with what it expects of the SaaS (the rule of the contract it holds it to).
pub const CHECKS: &[(&str, &str)] = &[
    ("health.version", "health → 200 {\"connector_version\": 1}"),
    ("signature.other_secret", "users.lookup signed with a secret that is not the SaaS's → 4xx"),
    (
        "signature.stale",
        "users.lookup signed ten minutes ago (Standard Webhooks allows five) → 4xx",
    ),
    ("signature.missing", "users.lookup without webhook-id, -timestamp, -signature → 4xx"),
    ("users.lookup.unknown", "users.lookup of an unknown address → 200 {\"user\": null}"),
    (
        "users.create.shape",
        "users.create → 200 {\"user\": User, \"organization_id\", \"project_id\"}: the new user of that address, integer project ids, what was made listed",
    ),
    (
        "users.create.same_webhook_id",
        "the same users.create under the same webhook-id → the recorded answer (the same user)",
    ),
    (
        "users.create.exists",
        "users.create of an existing address under a new webhook-id → 409 error object, code user_exists",
    ),
    (
        "users.lookup.case_insensitive",
        "users.lookup of the address in upper case → the user, with its organization and project",
    ),
    (
        "projects.create.shape",
        "projects.create → 200 {\"project\": {\"id\": integer, \"name\", \"demo\"}} with a new id",
    ),
    (
        "resources.provision.shape",
        "resources.provision → 200 {\"access_configuration\": {string: string}, \"public_keys\": [its keys that are not secret]}",
    ),
    (
        "resources.provision.same_webhook_id",
        "the same resources.provision under the same webhook-id → 200 credentials again",
    ),
    (
        "resources.rotate.new_credentials",
        "resources.rotate → 200 credentials whose secret values are all new",
    ),
    (
        "resources.update_service.same_service",
        "resources.update_service to the service it is on → 200 {}",
    ),
    (
        "resources.remove.twice",
        "resources.remove → 200 {}, and again under a new webhook-id → 200 {}",
    ),
    (
        "dashboard.login.url",
        "dashboard.login → 200 {\"url\": an https (or loopback http) sign-in URL}",
    ),
    ("unknown_operation.refused", "an unknown operation → 4xx with the error object"),
    ("events.signed_accepted", "a signed event of an unknown type → 2xx"),
    ("events.unsigned_refused", "the same event unsigned → 4xx"),
];

fn expected(id: &str) -> &'static str {
    CHECKS.iter().find(|(check, _)| *check == id).map_or("", |(_, expected)| expected)
}

/// What the run needs to know.
pub struct Plan {
    /// The connector's base URL; operations are POSTed to `url/<operation>`.
    pub url: String,
    pub events_url: Option<String>,
    /// The one test address this run signs up.
    pub email: String,
    pub service_id: String,
    /// This run's id, in names and resource ids.
    pub run: String,
}

/// The user, organization and projects the run made, as the SaaS reported them.
struct Account {
    user_id: String,
    organization_id: String,
    project_id: i64,
}

pub struct Checks<'a> {
    saas: &'a Saas,
    events: Option<&'a Saas>,
    plan: &'a Plan,
    results: Vec<CheckResult>,
}

/// A check's verdict: `Ok(got)` passes, `Err(got)` fails.
type Verdict = Result<String, String>;

impl<'a> Checks<'a> {
    pub fn new(saas: &'a Saas, events: Option<&'a Saas>, plan: &'a Plan) -> Self {
        Self { saas, events, plan, results: Vec::new() }
    }

    pub async fn run(mut self) -> Vec<CheckResult> {
        self.health().await;
        self.signatures().await;
        self.lookup_unknown().await;
        let account = self.create_user().await;
        match &account {
            Some(account) => self.after_create(account).await,
            None => {
                for id in AFTER_CREATE {
                    self.skip(id, "needs the user of users.create.shape");
                }
            }
        }
        self.unknown_operation().await;
        self.events().await;
        self.results
    }

    async fn after_create(&mut self, account: &Account) {
        self.create_again(account).await;
        self.lookup_case(account).await;
        let project_id = self.create_project(account).await.unwrap_or(account.project_id);
        let account = Account {
            project_id,
            user_id: account.user_id.clone(),
            organization_id: account.organization_id.clone(),
        };
        match self.provision(&account).await {
            Some(first) => {
                self.provision_again(&account).await;
                self.rotate(&account, &first).await;
                self.update_same(&account).await;
                self.remove_twice(&account).await;
            }
            None => {
                for id in AFTER_PROVISION {
                    self.skip(id, "needs the resource of resources.provision");
                }
            }
        }
        self.dashboard(&account).await;
    }

    fn url(&self, operation: &str) -> String {
        format!("{}/{operation}", self.plan.url.trim_end_matches('/'))
    }

    /// A validly signed call of `operation` under the webhook-id of `step`.
    async fn call(&self, operation: &str, step: &str, body: &Value) -> Result<Answer, String> {
        let id = self.saas.webhook_id(step);
        self.saas.post(&self.url(operation), &id, body, Signing::Valid).await
    }

    fn record(&mut self, id: &str, verdict: Verdict) {
        let (outcome, got) = match verdict {
            Ok(got) => (Outcome::Pass, got),
            Err(got) => (Outcome::Fail, got),
        };
        self.push(id, got, outcome);
    }

    fn skip(&mut self, id: &str, why: &str) {
        self.push(id, format!("skipped: {why}"), Outcome::Skip);
    }

    fn push(&mut self, id: &str, got: String, outcome: Outcome) {
        let group = id.rsplit_once('.').map_or(id, |(group, _)| group).to_string();
        self.results.push(CheckResult {
            id: id.to_string(),
            group,
            scope: Scope::Protocol,
            tags: Vec::new(),
            expected: expected(id).to_string(),
            got,
            outcome,
        });
    }

    async fn health(&mut self) {
        let verdict = match self.call("health", "health", &json!({})).await {
            Ok(a)
                if a.is_success()
                    && a.json.as_ref().is_some_and(|j| j["connector_version"] == 1) =>
            {
                Ok(a.describe())
            }
            Ok(a) => Err(format!("{}: health must answer connector_version 1", a.describe())),
            Err(e) => Err(e),
        };
        self.record("health.version", verdict);
    }

    /// Transport: every call is signed per Standard Webhooks, and the SaaS verifies it before
    /// anything else. A lookup is the call that would leak most.
    async fn signatures(&mut self) {
        let body = json!({"email": self.plan.email});
        let cases = [
            (
                "signature.other_secret",
                Signing::OtherSecret,
                "signed with a secret that is not the SaaS's",
            ),
            (
                "signature.stale",
                Signing::Stale,
                "signed ten minutes ago (Standard Webhooks allows five)",
            ),
            (
                "signature.missing",
                Signing::Missing,
                "without webhook-id, webhook-timestamp, webhook-signature",
            ),
        ];
        for (id, signing, what) in cases {
            let step = format!("signature-{id}");
            let answer = self
                .saas
                .post(&self.url("users.lookup"), &self.saas.webhook_id(&step), &body, signing)
                .await;
            let verdict = match answer {
                Ok(a) if (400..500).contains(&a.status) => Ok(a.describe()),
                Ok(a) => Err(format!(
                    "{}: a call {what} must be refused with a 4xx before any work (Transport: signed per Standard Webhooks)",
                    a.describe()
                )),
                Err(e) => Err(e),
            };
            self.record(id, verdict);
        }
    }

    async fn lookup_unknown(&mut self) {
        let body = json!({"email": self.plan.email});
        let verdict = match self.call("users.lookup", "lookup-unknown", &body).await {
            Ok(a)
                if a.is_success()
                    && a.json.as_ref().is_some_and(|j| j.get("user") == Some(&Value::Null)) =>
            {
                Ok(a.describe())
            }
            Ok(a) => Err(format!(
                "{}: an address with no user answers {{\"user\": null}} (users.lookup)",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record("users.lookup.unknown", verdict);
    }

    fn create_body(&self) -> Value {
        json!({
            "email": self.plan.email,
            "organization_name": format!("connector-check {}", self.plan.run),
            "project_name": "connector-check",
            "orchestrator": {"name": "connector-check", "account": "acct_connector_check"},
        })
    }

    async fn create_user(&mut self) -> Option<Account> {
        let (verdict, account) =
            match self.call("users.create", "create", &self.create_body()).await {
                Ok(a) if a.is_success() => match created(&a, &self.plan.email) {
                    Ok(account) => (Ok(a.describe()), Some(account)),
                    Err(why) => (Err(format!("{}: {why}", a.describe())), None),
                },
                Ok(a) => (
                    Err(format!("{}: users.create of a new address answers 200", a.describe())),
                    None,
                ),
                Err(e) => (Err(e), None),
            };
        self.record("users.create.shape", verdict);
        account
    }

    async fn create_again(&mut self, account: &Account) {
        // The same webhook-id: the SaaS's record answers, no second user.
        let verdict = match self.call("users.create", "create", &self.create_body()).await {
            Ok(a) if a.is_success() => match created(&a, &self.plan.email) {
                Ok(again) if again.user_id == account.user_id => Ok(a.describe()),
                Ok(again) => Err(format!(
                    "{}: user {} is not the first answer's {} — a retry under the same webhook-id made a second user (Transport: the SaaS keeps its records of state-changing ids)",
                    a.describe(),
                    again.user_id,
                    account.user_id
                )),
                Err(why) => Err(format!("{}: {why}", a.describe())),
            },
            Ok(a) => Err(format!(
                "{}: a retry under the same webhook-id gets the recorded answer (Transport)",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record("users.create.same_webhook_id", verdict);
        // A new webhook-id: another operation, for an address that now exists.
        let verdict = match self.call("users.create", "create-again", &self.create_body()).await {
            Ok(a)
                if a.status == 409
                    && a.error_object().is_some_and(|(code, _)| code == "user_exists") =>
            {
                Ok(a.describe())
            }
            Ok(a) => Err(format!(
                "{}: an address that exists answers 409 {{\"error\":{{\"code\":\"user_exists\",…}}}} (users.create), never a second user",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record("users.create.exists", verdict);
    }

    async fn lookup_case(&mut self, account: &Account) {
        let shouted = self.plan.email.to_ascii_uppercase();
        let verdict = match self
            .call("users.lookup", "lookup-case", &json!({"email": shouted}))
            .await
        {
            Ok(a) if a.is_success() => match user_of(&a) {
                Ok(Some(user)) if user.id.as_str() == account.user_id => {
                    match user
                        .organizations
                        .iter()
                        .find(|o| o.id.as_str() == account.organization_id)
                    {
                        Some(o) if o.projects.iter().any(|p| p.id.get() == account.project_id) => {
                            Ok(a.describe())
                        }
                        Some(_) => Err(format!(
                            "{}: the organization does not list project {} (users.lookup: the projects the user can access)",
                            a.describe(),
                            account.project_id
                        )),
                        None => Err(format!(
                            "{}: organization {} is not listed (users.lookup)",
                            a.describe(),
                            account.organization_id
                        )),
                    }
                }
                Ok(Some(user)) => Err(format!(
                    "{}: found user {}, not {}",
                    a.describe(),
                    user.id.as_str(),
                    account.user_id
                )),
                Ok(None) => Err(format!(
                    "{}: emails are compared ASCII-case-insensitively (Email matching)",
                    a.describe()
                )),
                Err(why) => Err(format!("{}: {why}", a.describe())),
            },
            Ok(a) => Err(format!("{}: users.lookup answers 200", a.describe())),
            Err(e) => Err(e),
        };
        self.record("users.lookup.case_insensitive", verdict);
    }

    async fn create_project(&mut self, account: &Account) -> Option<i64> {
        let body = json!({
            "user_id": account.user_id,
            "organization_id": account.organization_id,
            "name": format!("connector-check {}", self.plan.run),
        });
        let (verdict, id) = match self.call("projects.create", "project", &body).await {
            Ok(a) if a.is_success() => {
                let project = a
                    .json
                    .as_ref()
                    .map(|j| serde_json::from_value::<Project>(j["project"].clone()));
                match project {
                    Some(Ok(project)) if project.id.get() != account.project_id => {
                        (Ok(a.describe()), Some(project.id.get()))
                    }
                    Some(Ok(_)) => {
                        (Err(format!("{}: a new project has a new id", a.describe())), None)
                    }
                    Some(Err(e)) => {
                        (Err(format!("{}: not {{\"project\": Project}}: {e}", a.describe())), None)
                    }
                    None => (Err(format!("{}: the body is not JSON", a.describe())), None),
                }
            }
            Ok(a) => {
                (Err(format!("{}: projects.create for a member answers 200", a.describe())), None)
            }
            Err(e) => (Err(e), None),
        };
        self.record("projects.create.shape", verdict);
        id
    }

    fn resource(&self, account: &Account) -> Value {
        json!({
            "resource_id": format!("connector-check-{}", self.plan.run),
            "user_id": account.user_id,
            "project_id": account.project_id,
            "organization_id": account.organization_id,
            "service_id": self.plan.service_id,
        })
    }

    fn provision_body(&self, account: &Account) -> Value {
        let mut body = self.resource(account);
        body["configuration"] = json!({});
        body["payment"] = Value::Null;
        body
    }

    async fn provision(&mut self, account: &Account) -> Option<Value> {
        let (verdict, first) = match self
            .call("resources.provision", "provision", &self.provision_body(account))
            .await
        {
            Ok(a) if a.is_success() => match credentials(&a) {
                Ok(()) => (Ok(a.describe()), a.json.clone()),
                Err(why) => (Err(format!("{}: {why}", a.describe())), None),
            },
            Ok(a) => (
                Err(format!(
                    "{}: resources.provision of service {} answers 200 (a paid service needs --service-id of a free one)",
                    a.describe(),
                    self.plan.service_id
                )),
                None,
            ),
            Err(e) => (Err(e), None),
        };
        self.record("resources.provision.shape", verdict);
        first
    }

    async fn provision_again(&mut self, account: &Account) {
        let verdict = match self
            .call("resources.provision", "provision", &self.provision_body(account))
            .await
        {
            Ok(a) if a.is_success() => credentials(&a)
                .map(|()| a.describe())
                .map_err(|why| format!("{}: {why}", a.describe())),
            Ok(a) => Err(format!(
                "{}: a repeated provision (same webhook-id) answers the same or fresh credentials, at most one set live (Transport)",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record("resources.provision.same_webhook_id", verdict);
    }

    async fn rotate(&mut self, account: &Account, first: &Value) {
        let verdict = match self.call("resources.rotate", "rotate", &self.resource(account)).await {
            Ok(a) if a.is_success() => match credentials(&a) {
                Ok(()) => {
                    let (before, after) =
                        (secrets(first), a.json.as_ref().map(secrets).unwrap_or_default());
                    let same: Vec<_> = after
                        .iter()
                        .filter(|kv| before.contains(kv))
                        .map(|(k, _)| k.as_str())
                        .collect();
                    if same.is_empty() {
                        Ok(a.describe())
                    } else {
                        Err(format!(
                            "{}: secret {} did not change (resources.rotate: every credential issued through the connector before dies)",
                            a.describe(),
                            same.join(", ")
                        ))
                    }
                }
                Err(why) => Err(format!("{}: {why}", a.describe())),
            },
            Ok(a) => {
                Err(format!("{}: resources.rotate of a live resource answers 200", a.describe()))
            }
            Err(e) => Err(e),
        };
        self.record("resources.rotate.new_credentials", verdict);
    }

    async fn update_same(&mut self, account: &Account) {
        let mut body = self.provision_body(account);
        body["from_service_id"] = json!(self.plan.service_id);
        let verdict = match self.call("resources.update_service", "update-same", &body).await {
            Ok(a) if a.is_success() && a.json.as_ref().is_some_and(Value::is_object) => {
                Ok(a.describe())
            }
            Ok(a) => Err(format!(
                "{}: an update to the service the resource is on answers {{}} and changes nothing (resources.update_service)",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record("resources.update_service.same_service", verdict);
    }

    async fn remove_twice(&mut self, account: &Account) {
        let body = self.resource(account);
        let mut answers = Vec::new();
        for step in ["remove", "remove-again"] {
            answers.push(self.call("resources.remove", step, &body).await);
        }
        let verdict = answers
            .into_iter()
            .map(|answer| match answer {
                Ok(a) if a.is_success() && a.json.as_ref().is_some_and(Value::is_object) => Ok(a.describe()),
                Ok(a) => Err(format!("{}: remove answers {{}}, also for a resource already removed (resources.remove)", a.describe())),
                Err(e) => Err(e),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|got| got.join("; "));
        self.record("resources.remove.twice", verdict);
    }

    async fn dashboard(&mut self, account: &Account) {
        let body = json!({
            "user_id": account.user_id,
            "organization_id": account.organization_id,
            "project_id": account.project_id,
            "purpose": "dashboard",
        });
        let verdict = match self.call("dashboard.login", "login", &body).await {
            Ok(a) if a.is_success() => match a.json.as_ref().and_then(|j| j["url"].as_str()) {
                Some(url) if sign_in_url(url) => Ok(format!("{} {{\"url\": …}}", a.status)),
                Some(url) => Err(format!(
                    "{} {{\"url\": {url:?}}}: the URL is https (http only on loopback) (dashboard.login)",
                    a.status
                )),
                None => Err(format!("{}: dashboard.login answers {{\"url\": …}}", a.describe())),
            },
            Ok(a) => Err(format!("{}: dashboard.login for a member answers 200", a.describe())),
            Err(e) => Err(e),
        };
        self.record("dashboard.login.url", verdict);
    }

    async fn unknown_operation(&mut self) {
        let verdict = match self
            .call("connector_check.no_such_operation", "unknown", &json!({}))
            .await
        {
            Ok(a) if (400..500).contains(&a.status) && a.error_object().is_some() => {
                Ok(a.describe())
            }
            Ok(a) => Err(format!(
                "{}: an operation the SaaS does not know is refused: a 4xx with {{\"error\":{{\"code\",\"message\"}}}} (Answers)",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record("unknown_operation.refused", verdict);
    }

    async fn events(&mut self) {
        let (Some(events), Some(url)) = (self.events, self.plan.events_url.as_deref()) else {
            for id in EVENTS {
                self.skip(id, "no --events-url");
            }
            return;
        };
        let id = format!("evt_connector_check_{}", self.plan.run);
        let event = json!({
            "id": id,
            "sequence": 0,
            "type": "connector_check.test",
            "created_at": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "data": {},
        });
        let verdict = match events.post(url, &id, &event, Signing::Valid).await {
            Ok(a) if a.is_success() => Ok(a.describe()),
            Ok(a) => Err(format!(
                "{}: an event of an unknown type is acknowledged with a 2xx and ignored (Events)",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record(EVENTS[0], verdict);
        let verdict = match events.post(url, &id, &event, Signing::Missing).await {
            Ok(a) if (400..500).contains(&a.status) => Ok(a.describe()),
            Ok(a) => Err(format!(
                "{}: an unsigned event is refused with a 4xx (Transport)",
                a.describe()
            )),
            Err(e) => Err(e),
        };
        self.record(EVENTS[1], verdict);
    }
}

/// The checks that need users.create's user.
const AFTER_CREATE: [&str; 10] = [
    "users.create.same_webhook_id",
    "users.create.exists",
    "users.lookup.case_insensitive",
    "projects.create.shape",
    "resources.provision.shape",
    "resources.provision.same_webhook_id",
    "resources.rotate.new_credentials",
    "resources.update_service.same_service",
    "resources.remove.twice",
    "dashboard.login.url",
];

/// The checks that need the provisioned resource.
const AFTER_PROVISION: [&str; 4] = [
    "resources.provision.same_webhook_id",
    "resources.rotate.new_credentials",
    "resources.update_service.same_service",
    "resources.remove.twice",
];

const EVENTS: [&str; 2] = ["events.signed_accepted", "events.unsigned_refused"];

/// users.create's answer, checked against the contract: the shape (ids, integer project ids,
/// RFC 3339 `joined_at`), the address, and that what was made for the request is listed.
fn created(answer: &Answer, email: &str) -> Result<Account, String> {
    let json = answer.json.clone().ok_or("the body is not JSON")?;
    let created: CreatedUser =
        serde_json::from_value(json).map_err(|e| format!("not the specified shape: {e}"))?;
    if !created.user.email.trim().eq_ignore_ascii_case(email) {
        return Err(format!("user.email {:?} is not the address created", created.user.email));
    }
    let organization = created
        .user
        .organizations
        .iter()
        .find(|o| o.id == created.organization_id)
        .ok_or("organization_id is not among user.organizations")?;
    if !organization.projects.iter().any(|p| p.id == created.project_id) {
        return Err("project_id is not among that organization's projects".into());
    }
    Ok(Account {
        user_id: created.user.id.as_str().to_string(),
        organization_id: created.organization_id.as_str().to_string(),
        project_id: created.project_id.get(),
    })
}

/// users.lookup's `user`, checked against the shape.
fn user_of(answer: &Answer) -> Result<Option<User>, String> {
    let user = answer.json.as_ref().and_then(|j| j.get("user")).ok_or("no \"user\" field")?;
    serde_json::from_value(user.clone()).map_err(|e| format!("not the specified User: {e}"))
}

/// Credentials as the contract shapes them: string values, `public_keys` present and naming keys
/// of `access_configuration`.
fn credentials(answer: &Answer) -> Result<(), String> {
    let json = answer.json.as_ref().ok_or("the body is not JSON")?;
    let config =
        json["access_configuration"].as_object().ok_or("access_configuration is not an object")?;
    if config.is_empty() || !config.values().all(Value::is_string) {
        return Err("access_configuration must map names to strings".into());
    }
    let public = json["public_keys"]
        .as_array()
        .ok_or("public_keys is missing (it names the keys that are not secret)")?;
    for key in public {
        let key = key.as_str().ok_or("public_keys holds a non-string")?;
        if !config.contains_key(key) {
            return Err(format!("public key {key:?} is not in access_configuration"));
        }
    }
    Ok(())
}

/// The secret (not public) values of a credentials answer.
fn secrets(json: &Value) -> Vec<(String, String)> {
    let public: Vec<&str> = json["public_keys"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    json["access_configuration"]
        .as_object()
        .map(|config| {
            config
                .iter()
                .filter(|(k, _)| !public.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// https, or http to a loopback host.
fn sign_in_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else { return false };
    match parsed.scheme() {
        "https" => true,
        "http" => provisio_server::connector::config::is_loopback(&parsed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{AFTER_CREATE, AFTER_PROVISION, CHECKS, EVENTS, expected, sign_in_url};

    #[test]
    fn every_check_has_an_expectation() {
        for id in AFTER_CREATE.iter().chain(&AFTER_PROVISION).chain(&EVENTS) {
            assert!(!expected(id).is_empty(), "{id}");
        }
        let ids: std::collections::HashSet<_> = CHECKS.iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), CHECKS.len(), "ids are unique");
    }

    #[test]
    fn sign_in_urls_are_https_or_loopback() {
        assert!(sign_in_url("https://app.saas.example/session?t=1"));
        assert!(sign_in_url("http://127.0.0.1:5000/session"));
        assert!(sign_in_url("http://localhost/session"));
        assert!(!sign_in_url("http://app.saas.example/session"));
        assert!(!sign_in_url("javascript:alert(1)"));
        assert!(!sign_in_url("not a url"));
    }
}
