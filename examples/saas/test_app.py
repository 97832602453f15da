"""Tests of the example SaaS, signing every request with `standardwebhooks` as provisio does.

Run with `python -m pytest examples/saas` or, from examples/saas, `python -m unittest`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from standardwebhooks.webhooks import Webhook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import app as saas  # after the sys.path line above


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


CONNECTOR_SECRET = new_secret()
EVENTS_SECRET = new_secret()
PUBLIC_URL = "https://saas.example"


def signed_headers(secrets_value: str, webhook_id: str, payload: str, at: datetime | None = None):
    """The headers provisio sends: one `v1,` signature per configured secret, space-separated."""
    at = at or datetime.now(timezone.utc)
    signature = " ".join(Webhook(s).sign(webhook_id, at, payload) for s in secrets_value.split())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
        "Connector-Version": "1",
    }


def new_id() -> str:
    return "op_" + secrets.token_urlsafe(32)


class SaasTestCase(unittest.TestCase):
    connector_secret = CONNECTOR_SECRET

    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.database = os.path.join(directory.name, "saas.db")
        self.app = saas.create_app(self.database, self.connector_secret, EVENTS_SECRET, PUBLIC_URL)
        self.client = self.app.test_client()

    # --- helpers ---

    def call(self, operation, body, webhook_id=None, secret=CONNECTOR_SECRET, client=None):
        payload = json.dumps(body)
        headers = signed_headers(secret, webhook_id or new_id(), payload)
        return (client or self.client).post(
            f"/provisio/v1/{operation}", data=payload, headers=headers
        )

    def ok(self, operation, body, webhook_id=None):
        response = self.call(operation, body, webhook_id)
        self.assertEqual(response.status_code, 200, response.get_data(as_text=True))
        self.assertEqual(response.content_type, "application/json")
        return response.get_json()

    def refused(self, response, status, code):
        self.assertEqual(response.status_code, status, response.get_data(as_text=True))
        error = response.get_json()["error"]
        self.assertEqual(error["code"], code)
        self.assertTrue(error["message"])

    def create_user(self, email="ada@example.com"):
        return self.ok(
            "users.create",
            {
                "email": email,
                "organization_name": "Ada's org",
                "project_name": "First project",
                "orchestrator": {"name": "stripe", "account": "acct_1"},
            },
        )

    def seed(self, email, organizations, **extra):
        response = self.client.post(
            "/admin/users", json={"email": email, "organizations": organizations, **extra}
        )
        self.assertEqual(response.status_code, 201, response.get_data(as_text=True))
        return response.get_json()["user"]

    def resource_body(self, created, resource_id="res_1", service_id="free", **extra):
        return {
            "resource_id": resource_id,
            "user_id": created["user"]["id"],
            "organization_id": created["organization_id"],
            "project_id": created["project_id"],
            "service_id": service_id,
            **extra,
        }

    def provision(self, created, resource_id="res_1", webhook_id=None, **extra):
        body = self.resource_body(created, resource_id, configuration={}, payment=None, **extra)
        return self.ok("resources.provision", body, webhook_id)

    def state(self):
        return self.client.get("/admin/state").get_json()

    def live_keys(self, resource_id="res_1"):
        return self.state()["live_credentials"].get(resource_id, 0)

    def sql(self, statement, *args):
        with sqlite3.connect(self.database) as db:
            return db.execute(statement, args).fetchall()


class TransportTest(SaasTestCase):
    def test_health(self):
        self.assertEqual(self.ok("health", {}), {"connector_version": 1})

    def test_bad_signatures_are_refused_with_the_error_object(self):
        self.refused(self.call("health", {}, secret=new_secret()), 401, "invalid_signature")

        payload = json.dumps({"email": "ada@example.com"})
        headers = signed_headers(CONNECTOR_SECRET, new_id(), payload)
        tampered = self.client.post(
            "/provisio/v1/users.lookup", data=payload.replace("ada", "bob"), headers=headers
        )
        self.refused(tampered, 401, "invalid_signature")

        stale = signed_headers(
            CONNECTOR_SECRET,
            new_id(),
            "{}",
            datetime.fromtimestamp(time.time() - 600, timezone.utc),
        )
        self.refused(
            self.client.post("/provisio/v1/health", data="{}", headers=stale),
            401,
            "invalid_signature",
        )

        for broken in ({}, {**headers, "webhook-signature": "garbage"}):
            response = self.client.post("/provisio/v1/health", data=payload, headers=broken)
            self.refused(response, 401, "invalid_signature")

    def test_unknown_operation_and_version_are_refused(self):
        self.refused(self.call("users.frobnicate", {}), 404, "unknown_operation")
        payload = "{}"
        headers = {**signed_headers(CONNECTOR_SECRET, new_id(), payload), "Connector-Version": "2"}
        response = self.client.post("/provisio/v1/health", data=payload, headers=headers)
        self.refused(response, 400, "unsupported_connector_version")

    def test_unknown_request_fields_are_ignored(self):
        self.assertEqual(self.ok("health", {"something": "new"}), {"connector_version": 1})
        self.assertIsNone(self.ok("users.lookup", {"email": "x@example.com", "extra": 1})["user"])


class RotatingSecretsTest(SaasTestCase):
    old, new = new_secret(), new_secret()
    connector_secret = f"{old} {new}"

    def test_any_configured_secret_verifies(self):
        self.assertEqual(self.call("health", {}, secret=self.new).status_code, 200)
        self.assertEqual(self.call("health", {}, secret=self.old).status_code, 200)
        # provisio rotating on its side: one signature per secret, one of them unknown here.
        both = f"{new_secret()} {self.new}"
        self.assertEqual(self.call("health", {}, secret=both).status_code, 200)
        self.refused(self.call("health", {}, secret=new_secret()), 401, "invalid_signature")


class UsersTest(SaasTestCase):
    def test_create_makes_user_organization_membership_and_project(self):
        created = self.create_user()
        user = created["user"]
        self.assertRegex(user["id"], r"^u_[0-9a-f]+$")
        self.assertRegex(created["organization_id"], r"^o_[0-9a-f]+$")
        self.assertIsInstance(created["project_id"], int)
        self.assertEqual(user["email"], "ada@example.com")
        self.assertTrue(user["email_verified"])
        [org] = user["organizations"]
        self.assertEqual(org["id"], created["organization_id"])
        self.assertEqual(org["name"], "Ada's org")
        datetime.strptime(org["joined_at"], "%Y-%m-%dT%H:%M:%SZ")
        self.assertEqual(
            org["projects"], [{"id": created["project_id"], "name": "First project", "demo": False}]
        )

    def test_lookup_matches_trimmed_ascii_case_insensitive_email(self):
        created = self.create_user("Ada@Example.com")
        found = self.ok("users.lookup", {"email": "  aDA@EXAMPLE.COM \n"})["user"]
        self.assertEqual(found, created["user"])
        self.assertIsNone(self.ok("users.lookup", {"email": "grace@example.com"})["user"])

    def test_no_unicode_folding(self):
        self.create_user("émile@example.com")
        self.assertIsNone(self.ok("users.lookup", {"email": "ÉMILE@example.com"})["user"])
        self.assertIsNotNone(self.ok("users.lookup", {"email": "éMILE@EXAMPLE.com"})["user"])

    def test_existing_email_is_user_exists(self):
        self.create_user("ada@example.com")
        body = {"email": " ADA@example.com", "organization_name": "o", "project_name": "p"}
        self.refused(self.call("users.create", body), 409, "user_exists")
        self.assertEqual(self.state()["counts"]["users"], 1)

    def test_lookup_lists_seeded_memberships_oldest_first_without_deleted_projects(self):
        user = self.seed(
            "grace@example.com",
            [
                {"name": "Later", "joined_at": "2024-05-01T00:00:00Z", "projects": [{"name": "b"}]},
                {
                    "name": "Earlier",
                    "joined_at": "2023-01-01T00:00:00Z",
                    "projects": [{"name": "demo", "demo": True}, {"name": "gone"}],
                },
            ],
            email_verified=False,
        )
        gone = user["organizations"][0]["projects"][1]["id"]
        self.client.delete(f"/admin/projects/{gone}")
        found = self.ok("users.lookup", {"email": "grace@example.com"})["user"]
        self.assertFalse(found["email_verified"])
        self.assertEqual([o["name"] for o in found["organizations"]], ["Earlier", "Later"])
        self.assertEqual(found["organizations"][0]["projects"][0]["demo"], True)
        self.assertEqual(len(found["organizations"][0]["projects"]), 1)

    def test_concurrent_creates_for_one_email_make_one_user(self):
        statuses = []

        def create():
            client = self.app.test_client()
            body = {"email": "race@example.com", "organization_name": "o", "project_name": "p"}
            statuses.append(self.call("users.create", body, client=client).status_code)

        threads = [threading.Thread(target=create) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(sorted(statuses), [200] + [409] * 19)
        self.assertEqual(self.state()["counts"]["users"], 1)


class DedupeTest(SaasTestCase):
    def test_a_repeated_webhook_id_gets_the_recorded_answer(self):
        body = {"email": "ada@example.com", "organization_name": "o", "project_name": "p"}
        webhook_id = new_id()
        first = self.ok("users.create", body, webhook_id)
        self.assertEqual(self.ok("users.create", body, webhook_id), first)
        self.assertEqual(self.state()["counts"]["users"], 1)

        project = {
            "user_id": first["user"]["id"],
            "organization_id": first["organization_id"],
            "name": "Second",
        }
        webhook_id = new_id()
        made = self.ok("projects.create", project, webhook_id)
        self.assertEqual(self.ok("projects.create", project, webhook_id), made)
        self.assertEqual(self.state()["counts"]["projects"], 2)

    def test_a_duplicate_while_the_first_runs_gets_503_and_a_dead_attempt_is_taken_over(self):
        webhook_id = new_id()
        self.sql(
            "INSERT INTO operations (webhook_id, operation, state, started_at)"
            " VALUES (?, 'users.create', 'running', ?)",
            webhook_id,
            time.time(),
        )
        body = {"email": "ada@example.com", "organization_name": "o", "project_name": "p"}
        response = self.call("users.create", body, webhook_id)
        self.refused(response, 503, "operation_in_progress")
        self.assertEqual(response.headers["Retry-After"], "1")

        self.sql("UPDATE operations SET started_at = ?", time.time() - saas.RUNNING_LEASE_S - 1)
        self.ok("users.create", body, webhook_id)
        self.assertEqual(self.state()["counts"]["users"], 1)

    def test_a_slow_first_attempt_makes_its_overtaking_retry_wait(self):
        self.client.post(
            "/admin/fail", json={"operation": "users.create", "status": None, "delay_ms": 1500}
        )
        body = {"email": "ada@example.com", "organization_name": "o", "project_name": "p"}
        webhook_id = new_id()
        answers = []
        slow = threading.Thread(
            target=lambda: answers.append(
                self.call("users.create", body, webhook_id, client=self.app.test_client())
            )
        )
        slow.start()
        deadline = time.time() + 5
        while not self.sql("SELECT 1 FROM operations WHERE state = 'running'"):
            self.assertLess(time.time(), deadline)
            time.sleep(0.01)
        self.refused(self.call("users.create", body, webhook_id), 503, "operation_in_progress")
        slow.join()
        self.assertEqual(answers[0].status_code, 200)
        self.assertEqual(self.ok("users.create", body, webhook_id), answers[0].get_json())

    def test_a_refusal_is_not_recorded(self):
        created = self.create_user()
        webhook_id = new_id()
        body = self.resource_body(
            created, service_id="pay_as_you_go", configuration={}, payment=None
        )
        self.refused(
            self.call("resources.provision", body, webhook_id), 400, "requires_payment_credentials"
        )
        body["payment"] = {"type": "stripe_payment_token", "stripe_payment_token": "spt_ok"}
        self.ok("resources.provision", body, webhook_id)

    def test_a_webhook_id_of_another_operation_is_refused(self):
        webhook_id = new_id()
        self.create_user()
        self.ok(
            "users.create",
            {"email": "b@example.com", "organization_name": "o", "project_name": "p"},
            webhook_id,
        )
        created = self.create_user("c@example.com")
        response = self.call(
            "projects.create",
            {
                "user_id": created["user"]["id"],
                "organization_id": created["organization_id"],
                "name": "x",
            },
            webhook_id,
        )
        self.refused(response, 422, "webhook_id_reused")


class ProjectsTest(SaasTestCase):
    def test_create_and_not_a_member(self):
        ada = self.create_user("ada@example.com")
        grace = self.create_user("grace@example.com")
        body = {
            "user_id": ada["user"]["id"],
            "organization_id": ada["organization_id"],
            "name": "<Second>",
        }
        project = self.ok("projects.create", body)["project"]
        self.assertIsInstance(project["id"], int)
        self.assertEqual(project, {"id": project["id"], "name": "<Second>", "demo": False})

        body["organization_id"] = grace["organization_id"]
        self.refused(self.call("projects.create", body), 400, "not_a_member")
        body["user_id"] = "u_nobody"
        self.refused(self.call("projects.create", body), 400, "not_a_member")


class ResourcesTest(SaasTestCase):
    def test_provision_answers_credentials_and_stores_only_a_hash(self):
        created = self.create_user()
        answer = self.provision(created)
        access = answer["access_configuration"]
        self.assertEqual(answer["public_keys"], ["api_key", "host"])
        self.assertEqual(access["host"], PUBLIC_URL)
        self.assertTrue(access["api_key"].startswith("pk_"))
        self.assertTrue(access["secret_key"].startswith("sk_"))
        [(stored,)] = self.sql(
            "SELECT secret_hash FROM api_keys WHERE public_key = ?", access["api_key"]
        )
        self.assertEqual(stored, hashlib.sha256(access["secret_key"].encode()).hexdigest())
        for table in ("api_keys", "operations", "resources"):
            self.assertNotIn(access["secret_key"], json.dumps(self.sql(f"SELECT * FROM {table}")))
        self.assertEqual(self.live_keys(), 1)

    def test_provision_again_and_rotate_revoke_what_came_before(self):
        created = self.create_user()
        webhook_id = new_id()
        first = self.provision(created, webhook_id=webhook_id)
        # The same webhook-id again: fresh credentials that replace those minted under it.
        again = self.provision(created, webhook_id=webhook_id)
        self.assertNotEqual(again["access_configuration"], first["access_configuration"])
        self.assertEqual(self.live_keys(), 1)
        # A new provision for the known resource (a repeated create): fresh, the old ones die.
        self.provision(created)
        self.assertEqual(self.live_keys(), 1)

        rotated = self.ok("resources.rotate", self.resource_body(created))
        self.assertEqual(rotated["public_keys"], ["api_key", "host"])
        self.assertEqual(self.live_keys(), 1)
        [(live,)] = self.sql("SELECT public_key FROM api_keys WHERE revoked_at IS NULL")
        self.assertEqual(live, rotated["access_configuration"]["api_key"])

        # A late duplicate of the superseded provision does not bring credentials back.
        body = self.resource_body(created, configuration={}, payment=None)
        self.refused(
            self.call("resources.provision", body, webhook_id), 409, "operation_superseded"
        )
        self.assertEqual(self.live_keys(), 1)

    def test_keys_made_in_the_saas_survive_rotation(self):
        created = self.create_user()
        self.provision(created)
        self.sql(
            "INSERT INTO api_keys (project_id, public_key, secret_hash, created_at)"
            " VALUES (?, 'pk_user', 'x', '2024-01-01T00:00:00Z')",
            created["project_id"],
        )
        self.ok("resources.rotate", self.resource_body(created))
        self.ok("resources.remove", self.resource_body(created))
        self.assertEqual(
            self.sql("SELECT public_key FROM api_keys WHERE revoked_at IS NULL"), [("pk_user",)]
        )

    def test_remove_revokes_and_unknown_is_fine(self):
        created = self.create_user()
        self.provision(created)
        self.assertEqual(self.ok("resources.remove", self.resource_body(created)), {})
        self.assertEqual(self.live_keys(), 0)
        self.assertEqual(self.ok("resources.remove", self.resource_body(created)), {})
        self.assertEqual(self.ok("resources.remove", self.resource_body(created, "res_x")), {})
        self.refused(
            self.call("resources.rotate", self.resource_body(created)), 400, "unknown_resource"
        )
        # Re-creating a removed resource provisions it again.
        self.provision(created)
        self.assertEqual(self.live_keys(), 1)

    def test_update_service_and_payment(self):
        created = self.create_user()
        self.provision(created)
        body = self.resource_body(
            created,
            from_service_id="free",
            service_id="pay_as_you_go",
            configuration={},
            payment=None,
        )
        self.refused(
            self.call("resources.update_service", body), 400, "requires_payment_credentials"
        )
        body["payment"] = {"type": "stripe_payment_token", "stripe_payment_token": "tok_bad"}
        self.refused(self.call("resources.update_service", body), 400, "billing_activation_failed")
        body["payment"] = {"type": "stripe_payment_token", "stripe_payment_token": "spt_good"}
        self.assertEqual(self.ok("resources.update_service", body), {})
        [resource] = self.state()["resources"]
        self.assertEqual(resource["service_id"], "pay_as_you_go")
        # Already there: no change, nothing to pay.
        body["payment"] = None
        self.assertEqual(self.ok("resources.update_service", body), {})

    def test_provision_on_a_paid_service_needs_a_payment_token(self):
        created = self.create_user()
        self.refused(
            self.call(
                "resources.provision",
                self.resource_body(created, service_id="pay_as_you_go", payment=None),
            ),
            400,
            "requires_payment_credentials",
        )
        self.refused(
            self.call(
                "resources.provision",
                self.resource_body(
                    created,
                    service_id="pay_as_you_go",
                    payment={"type": "stripe_payment_token", "stripe_payment_token": "pm_123"},
                ),
            ),
            400,
            "billing_activation_failed",
        )
        self.assertEqual(self.state()["counts"]["resources"], 0)

    def test_not_a_member_and_project_gone(self):
        created = self.create_user()
        self.provision(created)
        self.client.delete(f"/admin/projects/{created['project_id']}")
        for operation in ("resources.provision", "resources.rotate", "resources.update_service"):
            body = self.resource_body(created, service_id="free", configuration={}, payment=None)
            self.refused(self.call(operation, body), 400, "project_gone")
        # Removing a resource of a deleted project still works.
        self.assertEqual(self.ok("resources.remove", self.resource_body(created)), {})

        other = self.create_user("grace@example.com")
        self.client.delete(f"/admin/memberships/{other['user']['id']}/{other['organization_id']}")
        self.refused(
            self.call("resources.provision", self.resource_body(other)), 400, "not_a_member"
        )


class DashboardTest(SaasTestCase):
    def login(self, created, project_id="same"):
        body = {
            "user_id": created["user"]["id"],
            "organization_id": created["organization_id"],
            "project_id": created["project_id"] if project_id == "same" else project_id,
            "purpose": "dashboard",
        }
        return self.call("dashboard.login", body)

    def test_login_url_is_single_use(self):
        user = self.seed(
            "ada@example.com", [{"name": "<b>Ada & co</b>", "projects": [{"name": "<i>p</i>"}]}]
        )
        org = user["organizations"][0]
        created = {
            "user": user,
            "organization_id": org["id"],
            "project_id": org["projects"][0]["id"],
        }
        url = self.login(created).get_json()["url"]
        self.assertTrue(url.startswith(f"{PUBLIC_URL}/session?token="))
        path = url.removeprefix(PUBLIC_URL)

        response = self.client.get(path)
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response.headers["Location"], "/dashboard")
        cookie = response.headers["Set-Cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("Secure", cookie)

        page = self.client.get("/dashboard").get_data(as_text=True)
        self.assertIn("&lt;b&gt;Ada &amp; co&lt;/b&gt;", page)
        self.assertIn("&lt;i&gt;p&lt;/i&gt;", page)
        self.assertNotIn("<b>Ada", page)

        again = self.app.test_client().get(path)
        self.assertEqual(again.status_code, 400)
        self.assertIn("already used or has expired", again.get_data(as_text=True))
        self.assertEqual(self.app.test_client().get("/dashboard").status_code, 401)

    def test_an_expired_token_is_refused(self):
        created = self.create_user()
        url = self.login(created).get_json()["url"]
        self.sql("UPDATE login_tokens SET expires_at = ?", time.time() - 1)
        self.assertEqual(self.client.get(url.removeprefix(PUBLIC_URL)).status_code, 400)

    def test_login_is_refused_unless_member_with_access(self):
        created = self.create_user()
        self.assertEqual(self.login(created, project_id=None).status_code, 200)
        other = self.create_user("grace@example.com")
        self.refused(self.login(created, project_id=other["project_id"]), 400, "unknown_project")
        self.client.delete(f"/admin/projects/{created['project_id']}")
        self.refused(self.login(created), 400, "project_gone")
        created["organization_id"] = other["organization_id"]
        self.refused(self.login(created), 400, "not_a_member")

    def test_staff_are_never_signed_in(self):
        user = self.seed(
            "staff@example.com", [{"name": "Ops", "projects": [{"name": "p"}]}], staff=True
        )
        org = user["organizations"][0]
        created = {
            "user": user,
            "organization_id": org["id"],
            "project_id": org["projects"][0]["id"],
        }
        self.refused(self.login(created), 400, "staff_account")


class EventsTest(SaasTestCase):
    def send(self, event, secret=EVENTS_SECRET):
        payload = json.dumps(event)
        headers = signed_headers(secret, event["id"], payload)
        return self.client.post("/provisio/events", data=payload, headers=headers)

    def test_events_are_stored_once_and_unknown_types_acknowledged(self):
        event = {
            "id": "evt_1",
            "sequence": 7,
            "type": "resource.provisioned",
            "created_at": "2026-11-29T12:00:00Z",
            "data": {
                "resource_id": "res_1",
                "project_id": 1,
                "organization_id": "o_1",
                "service_id": "free",
                "operation_id": "op_x",
            },
        }
        self.assertEqual(self.send(event).status_code, 204)
        self.assertEqual(self.send(event).status_code, 204)
        unknown = {"id": "evt_2", "sequence": 8, "type": "something.new", "data": {}}
        self.assertEqual(self.send(unknown).status_code, 204)
        self.assertEqual(
            self.state()["events"],
            [
                {"id": "evt_1", "type": "resource.provisioned", "sequence": 7},
                {"id": "evt_2", "type": "something.new", "sequence": 8},
            ],
        )
        response = self.send({**event, "id": "evt_3"}, secret=CONNECTOR_SECRET)
        self.refused(response, 401, "invalid_signature")


class AdminTest(SaasTestCase):
    def test_fail_makes_the_next_calls_answer_a_status(self):
        created = self.create_user()
        self.client.post(
            "/admin/fail", json={"operation": "resources.provision", "count": 2, "status": 503}
        )
        body = self.resource_body(created, configuration={}, payment=None)
        webhook_id = new_id()
        for _ in range(2):
            response = self.call("resources.provision", body, webhook_id)
            self.refused(response, 503, "injected_failure")
            self.assertEqual(self.live_keys(), 0)
        self.ok("resources.provision", body, webhook_id)

    def test_fail_after_the_work_loses_the_answer_but_not_the_work(self):
        self.client.post("/admin/fail", json={"operation": "users.create", "when": "after"})
        body = {"email": "ada@example.com", "organization_name": "o", "project_name": "p"}
        webhook_id = new_id()
        self.refused(self.call("users.create", body, webhook_id), 503, "injected_failure")
        [user] = self.state()["users"]
        self.assertEqual(self.ok("users.create", body, webhook_id)["user"]["id"], user["id"])

    def test_fail_events(self):
        self.client.post("/admin/fail", json={"operation": "events", "status": 500})
        payload = json.dumps({"id": "evt_1", "sequence": 1, "type": "x", "data": {}})
        headers = signed_headers(EVENTS_SECRET, "evt_1", payload)
        self.assertEqual(
            self.client.post("/provisio/events", data=payload, headers=headers).status_code, 500
        )
        self.assertEqual(
            self.client.post("/provisio/events", data=payload, headers=headers).status_code, 204
        )

    def test_seeded_user_can_be_linked(self):
        user = self.seed("ada@example.com", [{"name": "Existing", "projects": [{"name": "p"}]}])
        self.assertEqual(self.ok("users.lookup", {"email": "ADA@example.com"})["user"], user)
        response = self.client.post("/admin/users", json={"email": "ada@example.com"})
        self.refused(response, 409, "user_exists")

    def test_seeded_joined_at_must_be_rfc3339(self):
        body = {"email": "ada@example.com", "organizations": [{"name": "o", "joined_at": "today"}]}
        self.refused(self.client.post("/admin/users", json=body), 400, "invalid_request")
        self.assertEqual(self.state()["counts"]["users"], 0)

    def test_admin_answers_loopback_clients_only(self):
        remote = self.client.get("/admin/state", environ_base={"REMOTE_ADDR": "192.0.2.1"})
        self.refused(remote, 403, "forbidden")
        self.assertEqual(self.client.get("/admin/state").status_code, 200)


class CommandLineTest(unittest.TestCase):
    def test_port_zero_prints_the_real_port_and_serves(self):
        with tempfile.TemporaryDirectory() as directory:
            env = {**os.environ, "SAAS_CONNECTOR_SECRET": CONNECTOR_SECRET}
            env.pop("SAAS_PUBLIC_URL", None)
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "app.py"),
                    "--listen",
                    "127.0.0.1:0",
                    "--db",
                    os.path.join(directory, "saas.db"),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            try:
                line = process.stdout.readline().strip()
                self.assertRegex(line, r"^example SaaS listening on http://127\.0\.0\.1:\d+$")
                origin = line.rsplit(" ", 1)[1]
                self.assertNotEqual(origin, "http://127.0.0.1:0")
                headers = signed_headers(CONNECTOR_SECRET, new_id(), "{}")
                request = urllib.request.Request(
                    f"{origin}/provisio/v1/health", data=b"{}", headers=headers, method="POST"
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    self.assertEqual(response.headers["Content-Type"], "application/json")
                    self.assertEqual(json.load(response), {"connector_version": 1})
            finally:
                process.terminate()
                process.wait(timeout=5)

    def test_a_missing_secret_refuses_the_start(self):
        env = {k: v for k, v in os.environ.items() if k != "SAAS_CONNECTOR_SECRET"}
        result = subprocess.run(
            [sys.executable, str(HERE / "app.py"), "--listen", "127.0.0.1:0", "--db", ":memory:"],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SAAS_CONNECTOR_SECRET", result.stderr)


if __name__ == "__main__":
    unittest.main()
