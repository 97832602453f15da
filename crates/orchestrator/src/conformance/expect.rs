//! What a check expects of one answer, said once: the same value prints the "expected" column and
//! judges the reply.

use serde_json::Value;

use super::{
    runner::Verdict,
    schemas::{Schema, Schemas},
};
use crate::Reply;

/// The spec's words for every signature failure (3.4).
pub const SIGNATURE_FAILED: &str = "Signature verification failed";
/// The spec's words for a missing or wrong `API-Version` (3.3).
pub const SUPPORTED_VERSIONS: &str = "Supported API-Versions: 0.1d";

/// The error envelopes a check can expect (spec 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    Flat,
    Typed,
    OAuth,
    Status,
}

impl Envelope {
    fn schema(self) -> Schema {
        match self {
            Self::Flat => Schema::ErrorFlat,
            Self::Typed => Schema::ErrorTyped,
            Self::OAuth => Schema::ErrorOAuth,
            Self::Status => Schema::ErrorStatus,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Typed => "typed",
            Self::OAuth => "oauth",
            Self::Status => "status",
        }
    }

    /// The code and the message of an envelope (`error_description` for oauth).
    fn parts(self, body: &Value) -> (Option<&str>, Option<&str>) {
        match self {
            Self::OAuth => (body["error"].as_str(), body["error_description"].as_str()),
            _ => (body["error"]["code"].as_str(), body["error"]["message"].as_str()),
        }
    }
}

/// The code an error must carry (`error.code`, or `error` in the oauth envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeRule {
    Is(&'static str),
    /// Any of these: the spec allows each.
    OneOf(&'static [&'static str]),
    /// Any code: the spec names none (bearer failures).
    Any,
}

impl CodeRule {
    fn allows(self, have: Option<&str>) -> bool {
        match self {
            Self::Is(want) => have == Some(want),
            Self::OneOf(allowed) => have.is_some_and(|have| allowed.contains(&have)),
            Self::Any => have.is_some(),
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Is(code) => code.to_string(),
            Self::OneOf(codes) => codes.join(" or "),
            Self::Any => "(any code)".to_string(),
        }
    }
}

/// The `id` of a typed or a status error. A typed error carries the request `id` only once the
/// request is authenticated (spec 4). A status error's `id` is `"<resource id or \"\">"` (spec 4):
/// `""` when the request names no resource; when it names one, that resource's id or `""` — the
/// spec allows both, so a check accepts both unless it tests provisio's choice
/// ([`Expect::exact_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdRule {
    Absent,
    Is(String),
    ResourceOrEmpty(String),
}

#[derive(Debug, Clone)]
enum Body {
    Error { envelope: Envelope, code: CodeRule, message: Option<&'static str>, id: IdRule },
    Schema { schema: Schema, fields: Vec<(&'static str, Value)> },
    Any,
}

/// An expected answer: a status and what the body must be.
#[derive(Debug, Clone)]
pub struct Expect {
    status: u16,
    body: Body,
}

impl Expect {
    fn error(status: u16, envelope: Envelope, code: &'static str) -> Self {
        let code = CodeRule::Is(code);
        Self { status, body: Body::Error { envelope, code, message: None, id: IdRule::Absent } }
    }

    pub fn flat(status: u16, code: &'static str) -> Self {
        Self::error(status, Envelope::Flat, code)
    }

    /// A typed error without `id` (call [`Expect::with_id`] for one raised after authentication).
    pub fn typed(status: u16, code: &'static str) -> Self {
        Self::error(status, Envelope::Typed, code)
    }

    pub fn oauth(status: u16, code: &'static str) -> Self {
        Self::error(status, Envelope::OAuth, code)
    }

    /// A status-envelope error (resources, bearer failures on deep links) about a request that
    /// names no resource: `id` is `""`. Call [`Expect::naming`] when the request names one.
    pub fn status_error(status: u16, code: &'static str) -> Self {
        Self::error(status, Envelope::Status, code).with_id("")
    }

    /// A bearer failure (spec 2, 3.4, 4): 401 in the status envelope, whatever its code — the spec
    /// names none (provisio's `unauthorized` is its own choice). `id` as [`Expect::status_error`].
    pub fn bearer_refused() -> Self {
        let mut expect = Self::status_error(401, "unauthorized");
        if let Body::Error { code, .. } = &mut expect.body {
            *code = CodeRule::Any;
        }
        expect
    }

    /// 401 flat `invalid_signature` with the spec's exact message.
    pub fn invalid_signature() -> Self {
        Self::flat(401, "invalid_signature").message(SIGNATURE_FAILED)
    }

    /// 400 flat `invalid_api_version` with the spec's exact message.
    pub fn invalid_api_version() -> Self {
        Self::flat(400, "invalid_api_version").message(SUPPORTED_VERSIONS)
    }

    /// A success whose body matches a shipped schema.
    pub fn schema(status: u16, schema: Schema) -> Self {
        Self { status, body: Body::Schema { schema, fields: Vec::new() } }
    }

    /// Only the status matters.
    pub fn status(status: u16) -> Self {
        Self { status, body: Body::Any }
    }

    /// The exact message (or `error_description`).
    pub fn message(mut self, text: &'static str) -> Self {
        if let Body::Error { message, .. } = &mut self.body {
            *message = Some(text);
        }
        self
    }

    /// Any of these codes instead of the one given: the spec allows each.
    pub fn code_one_of(mut self, codes: &'static [&'static str]) -> Self {
        if let Body::Error { code, .. } = &mut self.body {
            *code = CodeRule::OneOf(codes);
        }
        self
    }

    /// The typed error carries this request `id`.
    pub fn with_id(mut self, request_id: &str) -> Self {
        if let Body::Error { id, .. } = &mut self.body {
            *id = IdRule::Is(request_id.to_string());
        }
        self
    }

    /// The status error is about the resource `resource_id` the request names (in its path): its
    /// `id` is that resource's id or `""`, both allowed by spec 4.
    pub fn naming(mut self, resource_id: &str) -> Self {
        if let Body::Error { id, .. } = &mut self.body {
            *id = IdRule::ResourceOrEmpty(resource_id.to_string());
        }
        self
    }

    /// provisio's choice among the answers spec 4 allows: the status error's `id` is exactly the
    /// resource the request names, never `""`.
    pub fn exact_id(mut self) -> Self {
        if let Body::Error { id, .. } = &mut self.body
            && let IdRule::ResourceOrEmpty(resource) = id
        {
            *id = IdRule::Is(std::mem::take(resource));
        }
        self
    }

    /// A schema-checked body also has `value` at the JSON `pointer`.
    pub fn field(mut self, pointer: &'static str, value: impl Into<Value>) -> Self {
        if let Body::Schema { fields, .. } = &mut self.body {
            fields.push((pointer, value.into()));
        }
        self
    }

    /// The "expected" column.
    pub fn describe(&self) -> String {
        self.describe_id(None)
    }

    /// The "expected" column of a status error whose `id` is only known once the check runs:
    /// `words` say which resource it is.
    pub fn describe_with_id(&self, words: &str) -> String {
        self.describe_id(Some(words))
    }

    fn describe_id(&self, id_words: Option<&str>) -> String {
        match &self.body {
            Body::Any => self.status.to_string(),
            Body::Schema { schema, fields } => {
                let mut text = format!("{} matching {}", self.status, schema.file());
                for (pointer, value) in fields {
                    text.push_str(&format!(", {pointer} = {value}"));
                }
                text
            }
            Body::Error { envelope, code, message, id } => {
                let mut text = format!("{} {} {}", self.status, envelope.name(), code.describe());
                if let Some(message) = message {
                    text.push_str(&format!(" {message:?}"));
                }
                match (envelope, id) {
                    (Envelope::Typed, IdRule::Absent) => text.push_str(", no id"),
                    (Envelope::Typed, _) => text.push_str(", with the request id"),
                    (Envelope::Status, IdRule::Is(want)) => match id_words {
                        Some(words) => text.push_str(&format!(", id = {words}")),
                        None => text.push_str(&format!(", id {want:?}")),
                    },
                    (Envelope::Status, IdRule::ResourceOrEmpty(want)) => match id_words {
                        Some(words) => text.push_str(&format!(", id = {words} or \"\"")),
                        None => text.push_str(&format!(", id {want:?} or \"\"")),
                    },
                    _ => {}
                }
                text
            }
        }
    }

    /// Judges a reply: `Ok(got)` or `Err(got — reason)`.
    pub fn verify(&self, schemas: &Schemas, reply: &Reply) -> Verdict {
        let got = summarize(reply);
        self.mismatch(schemas, reply).map_or(Ok(got.clone()), |why| Err(format!("{got} — {why}")))
    }

    fn mismatch(&self, schemas: &Schemas, reply: &Reply) -> Option<String> {
        if reply.status != self.status {
            return Some(format!("status {} instead of {}", reply.status, self.status));
        }
        if matches!(self.body, Body::Any) {
            return None;
        }
        match &reply.json {
            Some(body) => self.body_mismatch(schemas, body),
            None => Some("the body is not JSON".into()),
        }
    }

    fn body_mismatch(&self, schemas: &Schemas, body: &Value) -> Option<String> {
        match &self.body {
            Body::Any => None,
            Body::Schema { schema, fields } => {
                if let Err(why) = schemas.validate(*schema, body) {
                    return Some(why);
                }
                fields.iter().find_map(|(pointer, want)| match body.pointer(pointer) {
                    Some(have) if have == want => None,
                    Some(have) => Some(format!("{pointer} is {have}, not {want}")),
                    None => Some(format!("{pointer} is missing")),
                })
            }
            Body::Error { envelope, code, message, id } => {
                if let Err(why) = schemas.validate(envelope.schema(), body) {
                    return Some(format!("not the {} envelope: {why}", envelope.name()));
                }
                let (have_code, have_message) = envelope.parts(body);
                if !code.allows(have_code) {
                    return Some(format!(
                        "code {} instead of {}",
                        have_code.unwrap_or("?"),
                        code.describe()
                    ));
                }
                if let Some(want) = message
                    && have_message != Some(*want)
                {
                    return Some(format!("message {:?} instead of {want:?}", have_message));
                }
                let shown = |have: Option<&Value>| have.map_or("absent".into(), Value::to_string);
                match (envelope, id, body.get("id")) {
                    (Envelope::Typed, IdRule::Absent, Some(have)) => {
                        Some(format!("carries id {have}; errors before authentication carry none"))
                    }
                    (Envelope::Typed | Envelope::Status, IdRule::Is(want), have)
                        if have != Some(&Value::from(want.as_str())) =>
                    {
                        let whose = match envelope {
                            Envelope::Typed => "the request id",
                            _ if want.is_empty() => "\"\" (the request names no resource)",
                            _ => "the resource id",
                        };
                        let want =
                            if want.is_empty() { String::new() } else { format!(" {want:?}") };
                        Some(format!("id {} instead of {whose}{want}", shown(have)))
                    }
                    (Envelope::Status, IdRule::ResourceOrEmpty(want), have)
                        if have != Some(&Value::from(want.as_str()))
                            && have != Some(&Value::from("")) =>
                    {
                        Some(format!(
                            "id {} is neither the resource id {want:?} nor \"\"",
                            shown(have)
                        ))
                    }
                    _ => None,
                }
            }
        }
    }
}

/// A reply in one line: status and compact body.
pub fn summarize(reply: &Reply) -> String {
    let body = match &reply.json {
        Some(json) => json.to_string(),
        None if reply.raw.is_empty() => "(empty body)".into(),
        None => String::from_utf8_lossy(&reply.raw).into_owned(),
    };
    format!("{} {body}", reply.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    fn reply(status: u16, json: Value) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            raw: json.to_string().into_bytes(),
            json: Some(json),
        }
    }

    #[test]
    fn judges_status_envelope_code_message_and_id() {
        let schemas = Schemas::load().unwrap();
        let sig = Expect::invalid_signature();
        let flat = json!({"error":{"code":"invalid_signature","message":SIGNATURE_FAILED}});
        assert!(sig.verify(&schemas, &reply(401, flat.clone())).is_ok());
        assert!(sig.verify(&schemas, &reply(403, flat)).is_err());
        let typed =
            json!({"type":"error","error":{"code":"invalid_signature","message":SIGNATURE_FAILED}});
        let why = sig.verify(&schemas, &reply(401, typed)).unwrap_err();
        assert!(why.contains("not the flat envelope"), "{why}");

        let with_id = Expect::typed(400, "team_resolution_failed").with_id("req_1");
        let body = |id: Value| json!({"id":id,"type":"error","error":{"code":"team_resolution_failed","message":"x"}});
        assert!(with_id.verify(&schemas, &reply(400, body(json!("req_1")))).is_ok());
        assert!(with_id.verify(&schemas, &reply(400, body(json!("other")))).is_err());
        let anonymous = Expect::typed(400, "team_resolution_failed");
        assert!(anonymous.verify(&schemas, &reply(400, body(json!("req_1")))).is_err());
        assert_eq!(with_id.describe(), "400 typed team_resolution_failed, with the request id");

        let status = |id: Value, code: &str| json!({"status":"error","id":id,"error":{"code":code,"message":"m"}});
        let ok = |expect: &Expect, id: Value, code: &str| {
            expect.verify(&schemas, &reply(expect.status, status(id, code))).is_ok()
        };

        // About a resource: its id or "" (spec 4), nothing else.
        let forbidden = Expect::status_error(403, "forbidden").naming("17");
        assert!(ok(&forbidden, json!("17"), "forbidden"));
        assert!(ok(&forbidden, json!(""), "forbidden"));
        assert!(!ok(&forbidden, json!("18"), "forbidden"));
        let why = forbidden.verify(&schemas, &reply(403, status(json!("18"), "forbidden")));
        assert!(why.unwrap_err().contains("neither the resource id \"17\" nor \"\""));
        assert!(!ok(&forbidden, json!("17"), "not_found"));
        let flat = json!({"error":{"code":"forbidden","message":"m"}});
        assert!(forbidden.verify(&schemas, &reply(403, flat)).is_err());
        let mut anonymous = status(json!(""), "forbidden");
        anonymous.as_object_mut().unwrap().remove("id");
        assert!(forbidden.verify(&schemas, &reply(403, anonymous)).is_err());
        assert_eq!(forbidden.describe(), "403 status forbidden, id \"17\" or \"\"");
        assert_eq!(
            forbidden.describe_with_id("the resource's id"),
            "403 status forbidden, id = the resource's id or \"\""
        );

        // provisio's choice: exactly the resource's id.
        let exact = forbidden.clone().exact_id();
        assert!(ok(&exact, json!("17"), "forbidden"));
        let why = exact.verify(&schemas, &reply(403, status(json!(""), "forbidden")));
        assert!(why.unwrap_err().contains("instead of the resource id \"17\""));
        assert_eq!(exact.describe(), "403 status forbidden, id \"17\"");

        // About no resource (a create): "" only.
        let create = Expect::status_error(400, "unknown_service");
        assert!(ok(&create, json!(""), "unknown_service"));
        let why = create.verify(&schemas, &reply(400, status(json!("17"), "unknown_service")));
        assert!(why.unwrap_err().contains("the request names no resource"));

        // Bearer failures: 401 status, any code.
        let bearer = Expect::bearer_refused().naming("17");
        assert!(ok(&bearer, json!(""), "unauthorized"));
        assert!(ok(&bearer, json!("17"), "invalid_token"));
        assert!(!ok(&bearer, json!("18"), "unauthorized"));
        assert!(bearer.verify(&schemas, &reply(403, status(json!(""), "unauthorized"))).is_err());
        let flat = json!({"error":{"code":"unauthorized","message":"m"}});
        assert!(bearer.verify(&schemas, &reply(401, flat)).is_err());
        assert_eq!(Expect::bearer_refused().describe(), "401 status (any code), id \"\"");

        // Several allowed codes.
        let either = Expect::status_error(400, "invalid_configuration")
            .code_one_of(&["invalid_configuration", "invalid_request"]);
        assert!(ok(&either, json!(""), "invalid_configuration"));
        assert!(ok(&either, json!(""), "invalid_request"));
        let why = either.verify(&schemas, &reply(400, status(json!(""), "unknown_service")));
        assert!(why.unwrap_err().contains("instead of invalid_configuration or invalid_request"));
    }

    #[test]
    fn schema_and_fields() {
        let schemas = Schemas::load().unwrap();
        let ok = Expect::schema(200, Schema::Health).field("/status", "ok");
        assert!(
            ok.verify(&schemas, &reply(200, json!({"status":"ok","supported_versions":["0.1d"]})))
                .is_ok()
        );
        assert!(ok.verify(&schemas, &reply(200, json!({"status":"ok"}))).is_err());
        assert_eq!(ok.describe(), "200 matching health.json, /status = \"ok\"");
    }
}
