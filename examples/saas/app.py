"""An example SaaS behind provisio's connector (connector v1).

It plays a small SaaS with users, organizations, memberships, projects, API keys, a dashboard and an
events receiver, and answers every connector operation as `POST /provisio/v1/<operation>`, each
request verified per Standard Webhooks. It is an example: one file, Flask and SQLite.

    python app.py --listen 127.0.0.1:8700 --db saas.db

Environment: SAAS_CONNECTOR_SECRET (required), SAAS_EVENTS_SECRET, SAAS_PUBLIC_URL; see README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import ipaddress
import json
import os
import secrets
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import NamedTuple

from flask import Flask, current_app, g, jsonify, redirect, request
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError
from werkzeug.serving import WSGIRequestHandler, make_server

CONNECTOR_VERSION = 1
PAID_SERVICES = {"pay_as_you_go"}
# State-changing answers are kept this long; the contract asks for at least 24 h.
RECORD_RETENTION_S = 48 * 3600
# A 'running' record older than this belongs to an attempt that died (a crash between the claim and
# the commit); the next attempt takes it over instead of answering 503 forever.
RUNNING_LEASE_S = 60
LOGIN_TOKEN_TTL_S = 60
SESSION_TTL_S = 8 * 3600
SESSION_COOKIE = "saas_session"
MAX_ORGANIZATIONS, MAX_PROJECTS = 1_000, 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 1,
    staff INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
-- SQLite's built-in lower() folds ASCII letters only: exactly the matching the connector asks for.
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (lower(email));

CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_active INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS memberships (
    user_id TEXT NOT NULL REFERENCES users (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    joined_at TEXT NOT NULL,
    PRIMARY KEY (user_id, organization_id)
);

CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an id is never reused
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    demo INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS resources (
    resource_id TEXT PRIMARY KEY,          -- provisio's id for the resource
    project_id INTEGER NOT NULL REFERENCES projects (id),
    organization_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    configuration TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    public_key TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,             -- SHA-256 of the secret key; the secret is never stored
    resource_id TEXT,                      -- set on keys issued through the connector only
    operation_id TEXT,                     -- the webhook-id of the call that minted the key
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_resource ON api_keys (resource_id);
CREATE INDEX IF NOT EXISTS api_keys_operation ON api_keys (operation_id);

-- One row per state-changing webhook-id: 'running' while an attempt works, then 'done'.
CREATE TABLE IF NOT EXISTS operations (
    webhook_id TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    answer TEXT,                           -- the JSON answer; NULL for minting operations (secrets)
    started_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_started ON operations (started_at);

CREATE TABLE IF NOT EXISTS login_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);

CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    created_at TEXT,
    data TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""


class ApiError(Exception):
    """Anything but success, answered with the connector's error object.

    A 4xx with this body is a refusal provisio does not retry; a 5xx is transient and retried.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class Call(NamedTuple):
    webhook_id: str
    replay: bool  # this webhook-id already did its work once (only minting operations run again)


# --- small helpers ------------------------------------------------------------------------------


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def text(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_request", f"{name} must be a non-empty string")
    return value


def positive_int(body: dict, name: str, *, optional: bool = False) -> int | None:
    value = body.get(name)
    if value is None and optional:
        return None
    if type(value) is not int or value <= 0:  # `type is`: a JSON true is not a project id
        raise ApiError(400, "invalid_request", f"{name} must be a positive integer")
    return value


def objects(value, name: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ApiError(400, "invalid_request", f"{name} must be a list of objects")
    return value


def rfc3339_or_none(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    try:  # fromisoformat takes "Z" from Python 3.11 only
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(400, "invalid_request", f"{name} must be an RFC 3339 date-time")
    return value


def email_of(body: dict) -> str:
    email = text(body, "email").strip()
    if "@" not in email:
        raise ApiError(400, "invalid_request", "email must be an email address")
    return email


# --- database -----------------------------------------------------------------------------------


def connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; `transaction` below opens them explicitly.
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    return db


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


@contextmanager
def transaction(db: sqlite3.Connection):
    # IMMEDIATE takes the write lock up front: two requests never both read, then both write.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def find_user_by_email(db, email: str):
    return db.execute(
        "SELECT id, staff FROM users WHERE lower(email) = lower(?)", (email.strip(),)
    ).fetchone()


def insert_user(db, email: str, *, verified: bool = True, staff: bool = False) -> str:
    user_id = "u_" + secrets.token_hex(8)
    db.execute(
        "INSERT INTO users (id, email, email_verified, staff, created_at) VALUES (?, ?, ?, ?, ?)",
        (user_id, email, verified, staff, now_rfc3339()),
    )
    return user_id


def insert_organization(db, owner_id: str, name: str, joined_at: str | None = None) -> str:
    organization_id = "o_" + secrets.token_hex(8)
    db.execute("INSERT INTO organizations (id, name) VALUES (?, ?)", (organization_id, name))
    db.execute(
        "INSERT INTO memberships (user_id, organization_id, joined_at) VALUES (?, ?, ?)",
        (owner_id, organization_id, joined_at or now_rfc3339()),
    )
    return organization_id


def insert_project(db, organization_id: str, name: str, demo: bool = False) -> int:
    cursor = db.execute(
        "INSERT INTO projects (organization_id, name, demo) VALUES (?, ?, ?)",
        (organization_id, name, demo),
    )
    return cursor.lastrowid


def user_json(db, user_id: str, *, check_limits: bool = True) -> dict:
    """The connector's User: accepted memberships, oldest first (ties by id), each with the projects
    the user can access; in this SaaS that is every project of the organization not deleted."""
    user = db.execute(
        "SELECT id, email, email_verified FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    organizations = db.execute(
        "SELECT o.id, o.name, m.joined_at FROM memberships m"
        " JOIN organizations o ON o.id = m.organization_id"
        " WHERE m.user_id = ? ORDER BY m.joined_at, o.id",
        (user_id,),
    ).fetchall()
    projects = db.execute(
        "SELECT p.id, p.name, p.demo, p.organization_id FROM projects p"
        " JOIN memberships m ON m.organization_id = p.organization_id"
        " WHERE m.user_id = ? AND NOT p.deleted ORDER BY p.id",
        (user_id,),
    ).fetchall()
    if check_limits and (len(organizations) > MAX_ORGANIZATIONS or len(projects) > MAX_PROJECTS):
        raise ApiError(400, "too_many_projects", "The user has too many organizations or projects")
    by_organization: dict[str, list] = {}
    for project in projects:
        by_organization.setdefault(project["organization_id"], []).append(
            {"id": project["id"], "name": project["name"], "demo": bool(project["demo"])}
        )
    return {
        "id": user["id"],
        "email": user["email"],
        "email_verified": bool(user["email_verified"]),
        "organizations": [
            {
                "id": org["id"],
                "name": org["name"],
                "joined_at": org["joined_at"],
                "projects": by_organization.get(org["id"], []),
            }
            for org in organizations
        ],
    }


def require_access(db, user_id: str, organization_id: str, project_id: int | None = None) -> None:
    """Refuses unless the user is a member of the organization and the project (if any) is one of
    its projects that still exists. An unknown user is "not a member" too."""
    if not db.execute(
        "SELECT 1 FROM memberships WHERE user_id = ? AND organization_id = ?",
        (user_id, organization_id),
    ).fetchone():
        raise ApiError(400, "not_a_member", "The user is not a member of this organization")
    if project_id is None:
        return
    project = db.execute(
        "SELECT deleted FROM projects WHERE id = ? AND organization_id = ?",
        (project_id, organization_id),
    ).fetchone()
    if project is None:
        raise ApiError(400, "unknown_project", "No such project in this organization")
    if project["deleted"]:
        raise ApiError(400, "project_gone", "The project was deleted")


def live_resource(db, resource_id: str, project_id: int):
    resource = db.execute(
        "SELECT service_id FROM resources WHERE resource_id = ? AND project_id = ? AND NOT removed",
        (resource_id, project_id),
    ).fetchone()
    if resource is None:
        raise ApiError(400, "unknown_resource", "No such resource in this project")
    return resource


def activate_billing(db, organization_id: str, service_id: str, payment) -> None:
    """A paid service needs a Stripe shared payment token (`spt_…`); a free one ignores `payment`."""
    if service_id not in PAID_SERVICES:
        return
    if payment is None:
        raise ApiError(
            400,
            "requires_payment_credentials",
            f"Service {service_id} requires payment credentials",
        )
    if not isinstance(payment, dict) or payment.get("type") != "stripe_payment_token":
        raise ApiError(400, "billing_activation_failed", "Unsupported payment method")
    token = payment.get("stripe_payment_token")
    if not isinstance(token, str) or not token.startswith("spt_"):
        raise ApiError(400, "billing_activation_failed", "The payment method was declined")
    # A real SaaS would attach the token to the organization's Stripe customer here (using the
    # webhook-id as Stripe's idempotency key). The token itself is never stored.
    db.execute("UPDATE organizations SET billing_active = 1 WHERE id = ?", (organization_id,))


def revoke_connector_keys(db, resource_id: str) -> None:
    # Only keys issued through the connector: keys the user made in the SaaS (resource_id NULL) stay.
    db.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE resource_id = ? AND revoked_at IS NULL",
        (now_rfc3339(), resource_id),
    )


def mint_credentials(db, resource_id: str, project_id: int, call: Call) -> dict:
    """Revokes the credentials issued through the connector for the resource and mints a fresh set.

    A repeated webhook-id mints afresh rather than answering from a record (only hashes of secrets
    are stored), replacing the set minted under that id: at most one set per id is ever live. If that
    set is already dead (a later rotation or a removal superseded it), the replay is refused instead
    of bringing credentials back to life.
    """
    if (
        call.replay
        and not db.execute(
            "SELECT 1 FROM api_keys WHERE operation_id = ? AND revoked_at IS NULL",
            (call.webhook_id,),
        ).fetchone()
    ):
        raise ApiError(409, "operation_superseded", "A later operation replaced what this one did")
    revoke_connector_keys(db, resource_id)
    public_key = "pk_" + secrets.token_hex(16)
    secret_key = "sk_" + secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO api_keys (project_id, public_key, secret_hash, resource_id, operation_id,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (project_id, public_key, sha256(secret_key), resource_id, call.webhook_id, now_rfc3339()),
    )
    return {
        "access_configuration": {
            "api_key": public_key,
            "host": current_app.config["PUBLIC_URL"],
            "secret_key": secret_key,
        },
        "public_keys": ["api_key", "host"],
    }


# --- connector operations -----------------------------------------------------------------------

OPERATIONS: dict[str, tuple] = {}  # name → (handler, state_changing)
MINTING = {"resources.provision", "resources.rotate"}


def operation(name: str, *, writes: bool):
    def register(handler):
        OPERATIONS[name] = (handler, writes)
        return handler

    return register


@operation("health", writes=False)
def health(db, body, call):
    return {"connector_version": CONNECTOR_VERSION}


@operation("users.lookup", writes=False)
def users_lookup(db, body, call):
    user = find_user_by_email(db, email_of(body))
    return {"user": user_json(db, user["id"]) if user else None}


@operation("users.create", writes=True)
def users_create(db, body, call):
    email = email_of(body)
    organization_name, project_name = text(body, "organization_name"), text(body, "project_name")
    # The write lock is held (BEGIN IMMEDIATE), so nobody creates this email between check and
    # insert; the unique index is the backstop.
    if find_user_by_email(db, email):
        raise ApiError(409, "user_exists", "A user with this email already exists")
    user_id = insert_user(db, email)
    organization_id = insert_organization(db, user_id, organization_name)
    project_id = insert_project(db, organization_id, project_name)
    return {
        "user": user_json(db, user_id),
        "organization_id": organization_id,
        "project_id": project_id,
    }


@operation("projects.create", writes=True)
def projects_create(db, body, call):
    user_id, organization_id, name = (
        text(body, "user_id"),
        text(body, "organization_id"),
        text(body, "name"),
    )
    require_access(db, user_id, organization_id)
    project_id = insert_project(db, organization_id, name)
    return {"project": {"id": project_id, "name": name, "demo": False}}


def resource_request(body) -> tuple[str, str, str, int, str]:
    return (
        text(body, "resource_id"),
        text(body, "user_id"),
        text(body, "organization_id"),
        positive_int(body, "project_id"),
        text(body, "service_id"),
    )


def configuration_of(body) -> str:
    configuration = body.get("configuration") or {}
    if not isinstance(configuration, dict):
        raise ApiError(400, "invalid_request", "configuration must be an object")
    return json.dumps(configuration)


@operation("resources.provision", writes=True)
def resources_provision(db, body, call):
    resource_id, user_id, organization_id, project_id, service_id = resource_request(body)
    configuration = configuration_of(body)
    require_access(db, user_id, organization_id, project_id)
    activate_billing(db, organization_id, service_id, body.get("payment"))
    # A known resource_id (a repeated create, or a re-created removed resource) is provisioned
    # again; mint_credentials revokes what was issued for it before.
    db.execute(
        "INSERT INTO resources (resource_id, project_id, organization_id, user_id, service_id,"
        " configuration) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (resource_id) DO UPDATE SET project_id = excluded.project_id,"
        " organization_id = excluded.organization_id, user_id = excluded.user_id,"
        " service_id = excluded.service_id, configuration = excluded.configuration, removed = 0",
        (resource_id, project_id, organization_id, user_id, service_id, configuration),
    )
    return mint_credentials(db, resource_id, project_id, call)


@operation("resources.update_service", writes=True)
def resources_update_service(db, body, call):
    resource_id, user_id, organization_id, project_id, service_id = resource_request(body)
    configuration = configuration_of(body)
    require_access(db, user_id, organization_id, project_id)
    if live_resource(db, resource_id, project_id)["service_id"] == service_id:
        return {}  # already there: no change (and nothing to pay for)
    activate_billing(db, organization_id, service_id, body.get("payment"))
    db.execute(
        "UPDATE resources SET service_id = ?, configuration = ? WHERE resource_id = ?",
        (service_id, configuration, resource_id),
    )
    return {}


@operation("resources.rotate", writes=True)
def resources_rotate(db, body, call):
    resource_id, user_id, organization_id, project_id, _ = resource_request(body)
    require_access(db, user_id, organization_id, project_id)
    live_resource(db, resource_id, project_id)
    return mint_credentials(db, resource_id, project_id, call)


@operation("resources.remove", writes=True)
def resources_remove(db, body, call):
    resource_id, user_id, organization_id, project_id, _ = resource_request(body)
    resource = db.execute(
        "SELECT project_id, removed FROM resources WHERE resource_id = ?", (resource_id,)
    ).fetchone()
    if resource is None or resource["removed"]:
        return {}
    # Membership is checked, the project is not: removing a resource of a deleted project is fine.
    require_access(db, user_id, organization_id)
    if resource["project_id"] != project_id:
        raise ApiError(400, "unknown_resource", "No such resource in this project")
    revoke_connector_keys(db, resource_id)
    db.execute("UPDATE resources SET removed = 1 WHERE resource_id = ?", (resource_id,))
    return {}  # the data is the SaaS's to keep


@operation("dashboard.login", writes=False)
def dashboard_login(db, body, call):
    user_id, organization_id = text(body, "user_id"), text(body, "organization_id")
    project_id = positive_int(body, "project_id", optional=True)
    if body.get("purpose", "dashboard") != "dashboard":
        raise ApiError(400, "unsupported_purpose", "Only the dashboard purpose is supported")
    user = db.execute("SELECT staff FROM users WHERE id = ?", (user_id,)).fetchone()
    if user is not None and user["staff"]:
        raise ApiError(400, "staff_account", "Staff accounts are never signed in this way")
    require_access(db, user_id, organization_id, project_id)
    token = secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO login_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
        (sha256(token), user_id, time.time() + LOGIN_TOKEN_TTL_S),
    )
    return {"url": f"{current_app.config['PUBLIC_URL']}/session?token={token}"}


# --- idempotency by webhook-id ------------------------------------------------------------------


def claim(db, operation_name: str, webhook_id: str) -> tuple[str, dict | None]:
    """Claims a webhook-id: ('new', None) when this attempt must do the work, ('running', None)
    while another attempt does it, ('done', answer) once it was done."""
    now = time.time()
    with transaction(db):
        db.execute("DELETE FROM operations WHERE started_at < ?", (now - RECORD_RETENTION_S,))
        row = db.execute(
            "SELECT operation, state, answer, started_at FROM operations WHERE webhook_id = ?",
            (webhook_id,),
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO operations (webhook_id, operation, state, started_at)"
                " VALUES (?, ?, 'running', ?)",
                (webhook_id, operation_name, now),
            )
            return "new", None
        if row["operation"] != operation_name:
            raise ApiError(422, "webhook_id_reused", "This webhook-id belongs to another operation")
        if row["state"] == "running":
            if row["started_at"] > now - RUNNING_LEASE_S:
                return "running", None
            db.execute(
                "UPDATE operations SET started_at = ? WHERE webhook_id = ?", (now, webhook_id)
            )
            return "new", None
        return "done", json.loads(row["answer"]) if row["answer"] else None


def run_once(db, operation_name: str, handler, body: dict, webhook_id: str, fault) -> dict:
    """Runs a state-changing operation at most once per webhook-id.

    Only successes are recorded: a refusal changed nothing, so a retry simply runs again. The work
    and its record commit in one transaction, so either both happened or neither did.
    """
    state, answer = claim(db, operation_name, webhook_id)
    replay = state == "done"
    try:
        fault.before_work()
        if state == "running":
            # A retry that overtook a slow first attempt: 5xx, so provisio tries again later.
            raise ApiError(503, "operation_in_progress", "This operation is still running", 1)
        if not replay or operation_name in MINTING:
            with transaction(db):
                answer = handler(db, body, Call(webhook_id, replay))
                recorded = None if operation_name in MINTING else json.dumps(answer)
                db.execute(
                    "UPDATE operations SET state = 'done', answer = ? WHERE webhook_id = ?",
                    (recorded, webhook_id),
                )
    except BaseException:
        if state == "new":  # nothing was done: let the next attempt run it
            db.execute(
                "DELETE FROM operations WHERE webhook_id = ? AND state = 'running'", (webhook_id,)
            )
        raise
    fault.after_work()
    return answer


# --- failure injection (POST /admin/fail) -------------------------------------------------------


class Fault(NamedTuple):
    """What the next calls of an operation do: wait delay_ms, then answer status (None: answer
    normally), either before the work is done or after it (the answer is lost, the work stays)."""

    status: int | None = None
    delay_ms: int = 0
    after: bool = False

    def before_work(self):
        if not self.after:
            self._strike()

    def after_work(self):
        if self.after:
            self._strike()

    def _strike(self):
        time.sleep(self.delay_ms / 1000)
        if self.status:
            retry_after = 1 if self.status in (429, 503) else None
            raise ApiError(
                self.status, "injected_failure", "Injected by POST /admin/fail", retry_after
            )


NO_FAULT = Fault()


def take_fault(name: str) -> Fault:
    faults, lock = current_app.extensions["saas_faults"]
    with lock:
        pending = faults.get(name)
        if not pending:
            return NO_FAULT
        fault, count = pending
        if count <= 1:
            del faults[name]
        else:
            faults[name] = (fault, count - 1)
        return fault


# --- HTML ---------------------------------------------------------------------------------------


def page(title: str, body_html: str, status: int = 200):
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body_html}</body></html>"
    )
    return (
        document,
        status,
        {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
    )


# --- the app ------------------------------------------------------------------------------------


def verifiers(value: str | None, env_name: str) -> list[Webhook]:
    """One Standard Webhooks verifier per space-separated `whsec_` secret (several while rotating)."""
    found = []
    for secret in (value or "").split():
        try:
            if not secret.startswith("whsec_"):
                raise ValueError
            base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            found.append(Webhook(secret))
        except (ValueError, EmptyWebhookSecretError):
            raise ValueError(f"{env_name}: each secret must be whsec_ followed by base64") from None
    return found


def verified_body(webhooks: list[Webhook]) -> dict:
    """The request's JSON object, once any configured secret verifies its signature."""
    data = request.get_data()
    headers = dict(request.headers)
    for webhook in webhooks:
        try:
            webhook.verify(data, headers, json_parse=False)
            break
        except (WebhookVerificationError, ValueError):  # ValueError: a malformed header or body
            continue
    else:
        raise ApiError(401, "invalid_signature", "The Standard Webhooks signature does not verify")
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object")
    return body


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def create_app(
    database: str,
    connector_secret: str,
    events_secret: str | None = None,
    public_url: str | None = None,
) -> Flask:
    """The Flask app. `public_url` may be left out and set later as app.config["PUBLIC_URL"]."""
    connector_webhooks = verifiers(connector_secret, "SAAS_CONNECTOR_SECRET")
    if not connector_webhooks:
        raise ValueError("SAAS_CONNECTOR_SECRET: set one or more whsec_ secrets")
    app = Flask(__name__)
    app.config.update(
        DATABASE=database,
        PUBLIC_URL=(public_url or "").rstrip("/"),
        MAX_CONTENT_LENGTH=1 << 20,
    )
    app.extensions["saas_faults"] = ({}, threading.Lock())
    events_webhooks = verifiers(events_secret, "SAAS_EVENTS_SECRET")

    db = connect(database)
    db.execute("PRAGMA journal_mode = WAL")  # readers don't wait for the writer
    db.executescript(SCHEMA)
    db.close()

    @app.teardown_appcontext
    def close_db(_exc):
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        response = jsonify({"error": {"code": error.code, "message": error.message}})
        response.status_code = error.status
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(500)
    def internal_error(_error):
        return api_error(ApiError(500, "internal_error", "Something went wrong; retry later"))

    @app.before_request
    def admin_is_loopback_only():
        if request.path.startswith("/admin/") and not is_loopback(request.remote_addr):
            raise ApiError(403, "forbidden", "The admin helpers answer loopback clients only")

    @app.post("/provisio/v1/<name>")
    def connector(name: str):
        body = verified_body(connector_webhooks)
        if request.headers.get("Connector-Version", "1").strip() != str(CONNECTOR_VERSION):
            raise ApiError(400, "unsupported_connector_version", "This SaaS speaks connector v1")
        if name not in OPERATIONS:
            raise ApiError(404, "unknown_operation", f"No operation {name!r}")
        handler, writes = OPERATIONS[name]
        webhook_id = request.headers["webhook-id"]
        fault = take_fault(name)
        db = get_db()
        if writes:
            return jsonify(run_once(db, name, handler, body, webhook_id, fault))
        # Reads (health, users.lookup, dashboard.login) are answered fresh, never from a record.
        fault.before_work()
        with transaction(db):
            answer = handler(db, body, Call(webhook_id, replay=False))
        fault.after_work()
        return jsonify(answer)

    @app.post("/provisio/events")
    def events():
        if not events_webhooks:
            raise ApiError(503, "events_not_configured", "SAAS_EVENTS_SECRET is not set")
        event = verified_body(events_webhooks)
        event_id, event_type = text(event, "id"), text(event, "type")
        sequence = event.get("sequence")
        if type(sequence) is not int:
            raise ApiError(400, "invalid_request", "sequence must be an integer")
        fault = take_fault("events")
        fault.before_work()
        # Stored by id, so a redelivery is a no-op. Unknown types are stored and acknowledged alike;
        # `sequence` orders what arrives out of order. Event bodies hold personal data: not logged.
        get_db().execute(
            "INSERT INTO events (id, type, sequence, created_at, data, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                event_id,
                event_type,
                sequence,
                event.get("created_at"),
                json.dumps(event.get("data")),
                now_rfc3339(),
            ),
        )
        fault.after_work()
        return "", 204

    @app.get("/session")
    def session():
        token_hash = sha256(request.args.get("token", ""))
        now = time.time()
        db = get_db()
        with transaction(db):
            token = db.execute(
                "SELECT user_id FROM login_tokens"
                " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                (token_hash, now),
            ).fetchone()
            if token is not None:
                db.execute(
                    "UPDATE login_tokens SET used_at = ? WHERE token_hash = ?", (now, token_hash)
                )
                session_id = secrets.token_urlsafe(32)
                db.execute(
                    "INSERT INTO sessions (id_hash, user_id, expires_at) VALUES (?, ?, ?)",
                    (sha256(session_id), token["user_id"], now + SESSION_TTL_S),
                )
        if token is None:
            return page(
                "Sign-in link not valid",
                "<p>This sign-in link was already used or has expired."
                " Open the dashboard again from where you came.</p>",
                400,
            )
        response = redirect("/dashboard", 302)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=SESSION_TTL_S,
            httponly=True,
            samesite="Lax",
            secure=current_app.config["PUBLIC_URL"].startswith("https://"),
        )
        # The URL held a credential: keep it out of caches and of the next page's Referer.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/dashboard")
    def dashboard():
        session_id = request.cookies.get(SESSION_COOKIE, "")
        db = get_db()
        session = db.execute(
            "SELECT user_id FROM sessions WHERE id_hash = ? AND expires_at > ?",
            (sha256(session_id), time.time()),
        ).fetchone()
        if session is None:
            return page("Not signed in", "<p>Sign in from where you came.</p>", 401)
        user = user_json(db, session["user_id"], check_limits=False)
        organizations = "".join(
            f"<li>{html.escape(org['name'])}<ul>"
            + "".join(
                f"<li>{html.escape(p['name'])} (project {p['id']}){' — demo' if p['demo'] else ''}</li>"
                for p in org["projects"]
            )
            + "</ul></li>"
            for org in user["organizations"]
        )
        return page(
            "Dashboard",
            f"<p>Signed in as {html.escape(user['email'])}</p><ul>{organizations}</ul>",
        )

    # --- admin helpers, for demos and tests (loopback clients only, see admin_is_loopback_only) ---

    @app.get("/admin/state")
    def admin_state():
        db = get_db()
        users = db.execute("SELECT id, email FROM users ORDER BY created_at, id").fetchall()
        projects = db.execute(
            "SELECT id, organization_id, name, demo, deleted FROM projects ORDER BY id"
        ).fetchall()
        resources = db.execute(
            "SELECT r.resource_id, r.project_id, r.service_id, r.removed,"
            " (SELECT count(*) FROM api_keys k"
            "  WHERE k.resource_id = r.resource_id AND k.revoked_at IS NULL) AS live"
            " FROM resources r ORDER BY r.resource_id"
        ).fetchall()
        events = db.execute("SELECT id, type, sequence FROM events ORDER BY sequence").fetchall()
        return jsonify(
            {
                "counts": {
                    "users": len(users),
                    "organizations": db.execute("SELECT count(*) FROM organizations").fetchone()[0],
                    "projects": len(projects),
                    "resources": len(resources),
                    "live_credentials": sum(r["live"] for r in resources),
                    "events": len(events),
                    "operations": db.execute("SELECT count(*) FROM operations").fetchone()[0],
                },
                "users": [dict(u) for u in users],
                "projects": [
                    {**dict(p), "demo": bool(p["demo"]), "deleted": bool(p["deleted"])}
                    for p in projects
                ],
                "resources": [
                    {
                        "resource_id": r["resource_id"],
                        "project_id": r["project_id"],
                        "service_id": r["service_id"],
                        "removed": bool(r["removed"]),
                        "live_credentials": r["live"],
                    }
                    for r in resources
                ],
                "live_credentials": {r["resource_id"]: r["live"] for r in resources},
                "events": [dict(e) for e in events],
            }
        )

    @app.post("/admin/users")
    def admin_create_user():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "The body must be a JSON object")
        email = email_of(body)
        db = get_db()
        with transaction(db):
            if find_user_by_email(db, email):
                raise ApiError(409, "user_exists", "A user with this email already exists")
            user_id = insert_user(
                db,
                email,
                verified=bool(body.get("email_verified", True)),
                staff=bool(body.get("staff", False)),
            )
            for org in objects(body.get("organizations"), "organizations"):
                organization_id = insert_organization(
                    db, user_id, text(org, "name"), rfc3339_or_none(org, "joined_at")
                )
                for project in objects(org.get("projects"), "projects"):
                    name = text(project, "name")
                    insert_project(db, organization_id, name, bool(project.get("demo")))
            user = user_json(db, user_id, check_limits=False)
        return jsonify({"user": user}), 201

    @app.delete("/admin/projects/<int:project_id>")
    def admin_delete_project(project_id: int):
        get_db().execute("UPDATE projects SET deleted = 1 WHERE id = ?", (project_id,))
        return jsonify({"ok": True})

    @app.delete("/admin/memberships/<user_id>/<organization_id>")
    def admin_delete_membership(user_id: str, organization_id: str):
        get_db().execute(
            "DELETE FROM memberships WHERE user_id = ? AND organization_id = ?",
            (user_id, organization_id),
        )
        return jsonify({"ok": True})

    @app.post("/admin/fail")
    def admin_fail():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "The body must be a JSON object")
        name = body.get("operation")
        if name not in OPERATIONS and name != "events":
            raise ApiError(
                400, "invalid_request", "operation must be a connector operation or events"
            )
        count, status, delay_ms = (
            body.get("count", 1),
            body.get("status", 503),
            body.get("delay_ms", 0),
        )
        if type(count) is not int or count < 1:
            raise ApiError(400, "invalid_request", "count must be a positive integer")
        if status is not None and (type(status) is not int or not 400 <= status <= 599):
            raise ApiError(400, "invalid_request", "status must be 400..599 or null")
        if type(delay_ms) is not int or delay_ms < 0:
            raise ApiError(400, "invalid_request", "delay_ms must be a non-negative integer")
        when = body.get("when", "before")
        if when not in ("before", "after"):
            raise ApiError(400, "invalid_request", "when must be before or after")
        faults, lock = app.extensions["saas_faults"]
        with lock:
            faults[name] = (Fault(status, delay_ms, when == "after"), count)
        return jsonify({"ok": True})

    return app


class QuietRequestHandler(WSGIRequestHandler):
    """Logs requests without their query string: /session?token=… carries a credential."""

    def log_request(self, code="-", size="-"):
        self.log("info", '"%s %s" %s %s', self.command, self.path.split("?", 1)[0], code, size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An example SaaS behind provisio's connector.")
    parser.add_argument("--listen", default="127.0.0.1:8700", help="host:port (port 0: any free)")
    parser.add_argument("--db", default="saas.db", help="SQLite database file, made if missing")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        parser.error("--listen takes host:port")
    try:
        app = create_app(
            args.db,
            os.environ.get("SAAS_CONNECTOR_SECRET", ""),
            os.environ.get("SAAS_EVENTS_SECRET"),
            os.environ.get("SAAS_PUBLIC_URL"),
        )
    except ValueError as error:
        sys.exit(f"example SaaS: {error}")
    # Bind first, so port 0 works: the line below names the real port.
    server = make_server(host, int(port), app, threaded=True, request_handler=QuietRequestHandler)
    shown_host = f"[{host}]" if ":" in host else host
    origin = f"http://{shown_host}:{server.server_port}"
    if not app.config["PUBLIC_URL"]:
        app.config["PUBLIC_URL"] = origin
    print(f"example SaaS listening on {origin}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
