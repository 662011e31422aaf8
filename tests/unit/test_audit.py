"""The audit event writer (shared leaf), its redaction, the request context (trusted_proxies, X-Forwarded-For,
request ids) and the rate-limited authorization denials. Pure or in-process ASGI: milliseconds each."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow_identity_provider import audit
from airflow_identity_provider.auth.routes.request_context import AuditContextMiddleware
from airflow_identity_provider.auth.rules import audit as auth_audit
from airflow_identity_provider.auth.rules.access import AccessPolicy
from airflow_identity_provider.auth.rules.client_ip import (
    TrustedProxyError,
    client_ip,
    parse_address,
    parse_trusted_proxies,
)
from airflow_identity_provider.auth.rules.dag_grants import parse_dag_grants
from airflow_identity_provider.auth.rules.settings import SettingsError, parse_settings
from airflow_identity_provider.auth.rules.user import IdentityUser
from tests.support.audit import audit_events

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OID = "00000000-1111-2222-3333-444444444444"


def event(line: str) -> dict[str, Any]:
    return json.loads(line)


# --- the JSON object ---------------------------------------------------------------------------------------


def test_one_sorted_json_object_per_line_with_utc_milliseconds(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=audit.AUDIT_LOGGER):
        line = audit.emit("login", outcome="success", user_id="alice", roles=("Admin",), groups={"b", "a"}, team=None)
    parsed = event(line)
    assert line == json.dumps(parsed, sort_keys=True) and "\n" not in line
    assert TIME.match(str(parsed["time"]))
    assert parsed == {
        "time": parsed["time"],
        "event": "login",
        "outcome": "success",
        "user_id": "alice",
        "roles": ["Admin"],
        "groups": ["a", "b"],  # sets sorted: the same event reads the same
    }  # None fields are left out, no "reason" on success
    assert [r.getMessage() for r in caplog.records] == [line]
    assert caplog.records[0].name == "airflow_identity_provider.audit" and caplog.records[0].levelno == logging.INFO


def test_failure_carries_the_reason_code_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=audit.AUDIT_LOGGER):
        audit.emit("token", outcome="failure", reason="no_mapped_role")
        audit.emit("login", outcome="failure", reason="idp_unavailable", level=logging.ERROR)
    assert [(e["outcome"], e["reason"]) for e in audit_events(caplog)] == [
        ("failure", "no_mapped_role"),
        ("failure", "idp_unavailable"),
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.ERROR]


def test_a_reason_is_always_a_bounded_code(caplog: pytest.LogCaptureFixture) -> None:
    """Some reasons embed what a caller sent (``idp_error_<error>`` from the callback's query string)."""
    with caplog.at_level(logging.INFO, logger=audit.AUDIT_LOGGER):
        audit.emit("login", outcome="failure", reason="idp_error_" + "Evil <script> " * 20)
    [event] = audit_events(caplog)
    assert re.fullmatch(r"[a-z0-9_.:-]{1,64}", event["reason"]), event["reason"]


def test_outcome_and_reserved_names_are_checked() -> None:
    with pytest.raises(ValueError, match="outcome must be one of success, failure, unknown"):
        audit.emit("login", outcome="ok")
    with pytest.raises(TypeError, match="reserved"):
        audit.emit("login", outcome="success", time="yesterday")


def test_values_cannot_forge_a_second_event_or_flood_the_line() -> None:
    forged = 'x"}\n{"event": "login", "outcome": "success", "roles": ["Admin"]}\u202e'
    parsed = event(line := audit.emit("login", outcome="failure", reason="unsafe_next", next=forged))
    assert parsed["next"] == forged and "\n" not in line and "\u202e" not in line  # escaped, one object
    huge = event(audit.emit("login", outcome="failure", reason="x", detail="a " * 10_000))
    assert len(huge["detail"]) < audit.MAX_TEXT + 50 and huge["detail"].endswith("more characters)")
    many = event(audit.emit("login", outcome="success", groups=[f"g{i}" for i in range(1000)]))
    assert len(many["groups"]) == audit.MAX_ITEMS + 1 and many["groups"][-1] == "...(800 more)"
    odd = event(audit.emit("x", outcome="unknown", obj=object(), nan=float("nan"), nested={"a": {"b": {"c": [1]}}}))
    assert odd["nan"] == "nan" and odd["obj"].startswith("<object") and odd["nested"] == {"a": {"b": {"c": [1]}}}


# --- redaction -----------------------------------------------------------------------------------------------

SECRET_VALUE = "hunter2-but-longer"
SECRET_KEYS = [
    "token",
    "id_token",
    "access_token",
    "refresh_token",
    "secret",
    "password",
    "assertion",
    "client_assertion",
    "code",
    "code_verifier",
    "api_key",
    "client_secret",
    "authorization",
    "cookie",
    "set_cookie",
    # spelled otherwise, or ending like one
    "Authorization",
    "Client-Secret",
    "ID_TOKEN",
    "jumpcloud_api_key",
    "airflow_token",
    "graph_access_token",
    "session_cookie",
    "certificate_password",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_every_secret_named_field_is_masked_at_any_depth(key: str) -> None:
    line = audit.emit("token", outcome="failure", reason="x", **{key: SECRET_VALUE, "nested": {key: SECRET_VALUE}})
    assert SECRET_VALUE not in line
    parsed = event(line)
    assert parsed[key] == audit.REDACTED and parsed["nested"][key] == audit.REDACTED


def _jwt() -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part({'sub': 'alice', 'exp': 1})}.{secrets.token_urlsafe(64)}"


LONG_RANDOM = secrets.token_urlsafe(32)
STD_BASE64 = "q8Zp+T3/wXy0LmN4vB7cR2kD9sF6hJ1aQeW5uI8oP0g="  # standard base64, with + and /
ENTRA_SECRET = "Zkq8Q~3xY.N1lAbcDefGh_ijKlmNoPqRsTuVwXyZ01"
JWE = ".".join(["eyJhbGciOiJSU0EtT0FFUCJ9", *(secrets.token_urlsafe(24) for _ in range(4))])


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        pytest.param(lambda: _jwt(), None, id="jwt"),
        pytest.param(lambda: f"the IdP said: token {_jwt()} is expired", None, id="jwt-in-a-sentence"),
        pytest.param(lambda: JWE, JWE, id="jwe-five-parts"),
        pytest.param(lambda: f"Authorization: Bearer {LONG_RANDOM}", LONG_RANDOM, id="bearer-header"),
        pytest.param(lambda: "Basic YWxpY2U6aHVudGVyMg==", "YWxpY2U6aHVudGVyMg==", id="basic-header"),
        pytest.param(lambda: "/auth/callback?code=c0de-ABC&state=s", "c0de-ABC", id="code-in-a-url"),
        pytest.param(lambda: "https://x/cb#access_token=abc123xyz&t=1", "abc123xyz", id="fragment-token"),
        pytest.param(lambda: "client_secret=s3cr3t-value&grant_type=x", "s3cr3t-value", id="form-body"),
        pytest.param(lambda: "?sv=2022&sig=Zm9vYmFy%2Bcw%3D", "Zm9vYmFy%2Bcw%3D", id="sas-signature"),
        pytest.param(lambda: LONG_RANDOM, LONG_RANDOM, id="long-opaque-base64url"),
        pytest.param(lambda: f"refresh token was {STD_BASE64}.", STD_BASE64, id="opaque-std-base64"),
        pytest.param(lambda: f"secret {ENTRA_SECRET} expired", ENTRA_SECRET, id="entra-client-secret"),
        pytest.param(lambda: [LONG_RANDOM, {"deeper": [LONG_RANDOM]}], LONG_RANDOM, id="in-lists-and-objects"),
    ],
)
def test_secret_looking_values_are_masked_whatever_the_field(value: Any, secret: str | None) -> None:
    raw = value()
    line = audit.emit("login", outcome="failure", reason="x", detail=raw)
    needle = secret or raw.split(".")[2]  # for a JWT: its signature
    assert needle not in line, line
    assert audit.REDACTED in line


def test_registered_secrets_are_masked_even_when_they_look_harmless() -> None:
    audit.register_secret("airflow-client-secret", None, "short")  # "short": too short to register
    line = audit.emit("login", outcome="failure", reason="x", detail="sent airflow-client-secret to the IdP short")
    assert "airflow-client-secret" not in line and "short" in line


@pytest.mark.parametrize(
    "value",
    [
        f"{TENANT}:{OID}",  # an Entra user id
        uuid.uuid4().hex,  # our request ids
        secrets.token_hex(32),  # a content hash
        "5f7c8ec7c33c6c004bbafe82",  # a JumpCloud user id
        "/subscriptions/9b9b9b9b-5555-6666-7777-888888888888/resourceGroups/rgAirflowProdWestEurope001",
        "Microsoft.Storage/storageAccounts/write",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "AirflowProductionAdministrators2024",
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
        "alice@example.com",
        "airflow_identity_provider.auth.routes.request_context",
    ],
)
def test_identifiers_are_not_mistaken_for_secrets(value: str) -> None:
    assert event(audit.emit("login", outcome="success", detail=value))["detail"] == value


def test_redact_is_usable_on_its_own() -> None:
    assert audit.redact({"code": "abc", "state": "fine", "x": {"Cookie": "a=b"}}) == {
        "code": audit.REDACTED,
        "state": "fine",
        "x": {"Cookie": audit.REDACTED},
    }


# --- trusted_proxies and X-Forwarded-For --------------------------------------------------------------------


def test_trusted_proxies_parse_addresses_ranges_and_v6() -> None:
    assert [str(n) for n in parse_trusted_proxies(" 10.0.0.0/8, 192.168.1.10 fd00::/8,10.0.0.0/8")] == [
        "10.0.0.0/8",
        "192.168.1.10/32",
        "fd00::/8",
    ]
    assert parse_trusted_proxies("") == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"),
        (
            "proxy.internal",
            "'proxy.internal' is not an IP address or CIDR range; expected e.g. 10.0.0.0/8,192.168.1.10",
        ),
        ("0.0.0.0/0", "'0.0.0.0/0' trusts every address, so any client could forge X-Forwarded-For; list your proxies"),
        ("::/0", "'::/0' trusts every address"),
    ],
)
def test_bad_trusted_proxies_stop_with_one_line(text: str, problem: str) -> None:
    with pytest.raises(TrustedProxyError, match=re.escape(problem)):
        parse_trusted_proxies(text)
    with pytest.raises(SettingsError) as err:
        parse_settings({"issuer": "https://idp.example.com", "client_id": "airflow", "trusted_proxies": text})
    message = str(err.value)
    assert message.startswith("[identity_auth_manager] trusted_proxies: ") and "\n" not in message


def test_trusted_proxies_belong_to_the_main_section() -> None:
    raw = {"issuer": "https://idp.example.com", "client_id": "airflow", "trusted_proxies": "10.0.0.0/8"}
    assert parse_settings(raw).client_id == "airflow"
    with pytest.raises(SettingsError, match=r"trusted_proxies: belongs in \[identity_auth_manager\]"):
        parse_settings(raw, name="staff")


PROXIES = parse_trusted_proxies("10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        pytest.param("203.0.113.9", ["10.1.1.1"], "203.0.113.9", id="spoofed-from-an-untrusted-peer"),
        pytest.param("203.0.113.9", [], "203.0.113.9", id="direct"),
        pytest.param("10.0.0.4", ["198.51.100.7"], "198.51.100.7", id="one-trusted-proxy"),
        pytest.param("10.0.0.4", ["10.9.9.9, 198.51.100.7, 10.0.0.5"], "198.51.100.7", id="chain-of-proxies"),
        pytest.param("10.0.0.4", ["1.1.1.1, 198.51.100.7"], "198.51.100.7", id="client-spoofs-a-prefix"),
        pytest.param("10.0.0.4", ["1.1.1.1", "198.51.100.7"], "198.51.100.7", id="several-headers"),
        pytest.param("10.0.0.4", ["10.2.2.2, 10.3.3.3"], "10.2.2.2", id="all-trusted"),
        pytest.param("10.0.0.4", ["garbage, 10.3.3.3"], "10.3.3.3", id="malformed-hop-stops-the-walk"),
        pytest.param("10.0.0.4", ["198.51.100.7:51234"], "198.51.100.7", id="app-gateway-port"),
        pytest.param("10.0.0.4", ["[2001:db8::1]:443"], "2001:db8::1", id="v6-with-port"),
        pytest.param("fd00::1", ["2001:db8::2"], "2001:db8::2", id="v6-proxy"),
        pytest.param("::ffff:10.0.0.4", ["198.51.100.7"], "198.51.100.7", id="v4-mapped-peer"),
        pytest.param("10.0.0.4", [], "10.0.0.4", id="trusted-peer-without-header"),
        pytest.param("testclient", ["198.51.100.7"], "testclient", id="peer-not-an-ip"),
    ],
)
def test_client_ip_believes_x_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: list[str], expected: str
) -> None:
    assert client_ip(peer, forwarded, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_ip("10.0.0.4", ["198.51.100.7"], ()) == "10.0.0.4"
    assert parse_address("unknown") is None and str(parse_address('"[::1]"')) == "::1"


# --- request context and ids -----------------------------------------------------------------------------


def _app(trusted: str = "", *, twice: bool = False) -> FastAPI:
    app = FastAPI()

    @app.get("/sync")
    def sync() -> dict[str, Any]:  # runs in the thread pool: the binding must be visible there
        return event(audit.emit("probe", outcome="success"))

    @app.get("/async")
    async def not_sync() -> dict[str, Any]:
        return event(audit.emit("probe", outcome="success"))

    app.add_middleware(AuditContextMiddleware, trusted_proxies=parse_trusted_proxies(trusted))
    if twice:  # as on Airflow 3.3: the API-wide one outside, the /auth one inside
        app.add_middleware(AuditContextMiddleware, trusted_proxies=parse_trusted_proxies(trusted))
    return app


@pytest.mark.parametrize("path", ["/sync", "/async"])
def test_every_event_of_a_request_carries_ip_user_agent_and_request_id(path: str) -> None:
    client = TestClient(_app("10.0.0.0/8"), client=("10.0.0.4", 5000))
    response = client.get(path, headers={"X-Forwarded-For": "198.51.100.7", "User-Agent": "curl/8.5"})
    body = response.json()
    assert body["client_ip"] == "198.51.100.7" and body["user_agent"] == "curl/8.5"
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert response.headers["x-request-id"] == body["request_id"]  # so a user's report names the events
    assert audit.current_request() is None  # unbound once the request is answered


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    client = TestClient(_app("10.0.0.0/8"), client=("203.0.113.9", 5000))
    assert client.get("/sync", headers={"X-Forwarded-For": "10.1.1.1"}).json()["client_ip"] == "203.0.113.9"


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("f0e1d2c3-b4a5-4697-8899-aabbccddeeff", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),  # W3C traceparent-shaped
        ("ABC.123:x@y/z+=_-", True),
        ("has space", False),
        ('quote"d', False),
        ("x" * 129, False),
        ("-leading-dash", False),
        ("", False),
    ],
)
def test_request_id_is_the_callers_when_sane(header: str, kept: bool) -> None:
    response = TestClient(_app()).get("/sync", headers={"X-Request-ID": header})
    request_id = response.json()["request_id"]
    assert (request_id == header) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)


def test_nested_middlewares_keep_one_request_id() -> None:
    response = TestClient(_app(twice=True)).get("/sync")
    assert response.headers.get_list("x-request-id") == [response.json()["request_id"]]


def test_a_request_id_header_set_by_the_app_is_kept() -> None:
    app = FastAPI()

    @app.get("/")
    def own() -> Any:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse("x", headers={"X-Request-ID": "from-the-app"})

    app.add_middleware(AuditContextMiddleware)
    assert TestClient(app).get("/").headers.get_list("x-request-id") == ["from-the-app"]


def test_caller_fields_win_over_the_request_context() -> None:
    with audit.request_scope(audit.RequestContext("198.51.100.7", "ua", "rid")):
        parsed = event(audit.emit("login", outcome="success", client_ip="127.0.0.1"))
    assert (parsed["client_ip"], parsed["user_agent"], parsed["request_id"]) == ("127.0.0.1", "ua", "rid")
    assert "client_ip" not in event(audit.emit("login", outcome="success"))  # outside any request


# --- the auth wing's fields and rate-limited denials ----------------------------------------------------------


def user(user_id: str = "alice", **kwargs: Any) -> IdentityUser:
    return IdentityUser(user_id=user_id, name="Alice", email="", roles=("Viewer",), idp="default", **kwargs)


def test_user_fields_name_the_tenant_of_entra_ids() -> None:
    assert auth_audit.user_fields(user(f"{TENANT}:{OID}"))["tenant"] == TENANT
    assert auth_audit.user_fields(user(f"staff/{TENANT}:{OID}"))["tenant"] == TENANT
    assert auth_audit.user_fields(user("auth0|abc:def"))["tenant"] is None


def test_assignment_fields_say_which_claim_values_gave_which_role() -> None:
    from airflow_identity_provider.auth.rules.custom_roles import builtin_role_table

    roles = builtin_role_table()
    policy = AccessPolicy(
        role_mapping={"admins": ("Admin",), "ops": ("Op", "Viewer")},
        default_roles=("Viewer",),
        roles=roles,
        grants=parse_dag_grants('[{"groups": ["analytics"], "dags": ["analytics_*"], "role": "Op"}]', roles),
    )
    assignment = policy.assign(["ops", "analytics", "marketing"])
    assert assignment is not None
    fields = auth_audit.assignment_fields(policy, assignment, groups_claim="groups")
    assert fields["roles"] == ["Viewer", "Op"]
    assert fields["role_sources"] == {"Viewer": ["ops"], "Op": ["ops"]}
    assert fields["groups"] == ["ops", "analytics"] and fields["groups_claim"] == "groups"
    assert fields["dag_grants"] == ["dag_grants[0]: Op for analytics on dags analytics_*"]
    default_only = policy.assign(["marketing"])
    assert default_only is not None
    assert auth_audit.assignment_fields(policy, default_only, groups_claim="g")["role_sources"] == {
        "Viewer": ["default_role"]
    }


@pytest.fixture
def fresh_denials(monkeypatch: pytest.MonkeyPatch) -> audit.RateLimiter:
    limiter = audit.RateLimiter()
    monkeypatch.setattr(auth_audit, "DENIALS", limiter)
    return limiter


def test_at_most_one_denial_per_user_resource_and_minute(
    fresh_denials: audit.RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = user(), user("bob")
    with caplog.at_level(logging.INFO, logger=audit.AUDIT_LOGGER):
        for _ in range(5):
            auth_audit.denied(alice, "variable", "PUT", now=600.0)
        auth_audit.denied(alice, "variable", "DELETE", now=601.0)  # another method
        auth_audit.denied(alice, "dag.run", "POST", dag_id="etl", now=602.0)
        auth_audit.denied(alice, "dag.run", "POST", dag_id="other", now=603.0)  # another DAG
        auth_audit.denied(bob, "variable", "PUT", now=604.0)  # another user
        auth_audit.denied(alice, "variable", "PUT", now=659.9)  # same minute: held back
        auth_audit.denied(alice, "variable", "PUT", now=660.0)  # next minute: reported, with the count
    denials = audit_events(caplog, "authorization")
    assert [(d["user_id"], d["resource"], d["method"], d.get("dag_id")) for d in denials] == [
        ("alice", "variable", "PUT", None),
        ("alice", "variable", "DELETE", None),
        ("alice", "dag.run", "POST", "etl"),
        ("alice", "dag.run", "POST", "other"),
        ("bob", "variable", "PUT", None),
        ("alice", "variable", "PUT", None),
    ]
    assert "repeated" not in denials[0] and denials[-1]["repeated"] == 5
    assert {(d["outcome"], d["reason"]) for d in denials} == {("failure", "not_permitted")}
    assert denials[0]["roles"] == ["Viewer"] and denials[0]["idp"] == "default"


def test_the_denial_table_stays_bounded() -> None:
    limiter = audit.RateLimiter(max_keys=100)
    for i in range(1000):
        assert limiter.admit(("alice", i), now=float(i)) == 0  # a new key in each minute... and bounded
        assert len(limiter) <= 100
    for i in range(1000):
        limiter.admit(("burst", i), now=60_000.0)  # all in one minute: the table is cleared, never grows
        assert len(limiter) <= 100


def test_resource_keys_use_the_roles_vocabulary() -> None:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity

    assert auth_audit.resource_key("dag", None) == "dag"
    assert auth_audit.resource_key("dag", DagAccessEntity.RUN) == "dag.run"
    assert auth_audit.resource_key("view", AccessView.PLUGINS) == "view.plugins"


# --- routing with stock logging configuration (docs/audit.md) -------------------------------------------------

LOGGING_MODULE = """
from copy import deepcopy

from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

LOGGING_CONFIG = deepcopy(DEFAULT_LOGGING_CONFIG)
LOGGING_CONFIG["handlers"]["identity_audit"] = {
    "class": "logging.handlers.WatchedFileHandler",
    "filename": "AUDIT_FILE",
    "level": "INFO",
}
LOGGING_CONFIG["loggers"]["airflow_identity_provider.audit"] = {
    "handlers": ["identity_audit"],
    "level": "INFO",
    "propagate": False,
}
"""


def test_the_documented_logging_config_writes_pure_json_lines(tmp_path: Path) -> None:
    """Airflow drops each handler's formatter (everything goes through structlog): the file gets the bare
    message, which is the JSON object. Checked as Airflow loads it, in a fresh process."""
    target = tmp_path / "audit.jsonl"
    (tmp_path / "audit_logging.py").write_text(LOGGING_MODULE.replace("AUDIT_FILE", str(target)))
    script = textwrap.dedent(
        """
        import logging
        import airflow  # applies [logging] logging_config_class, as every Airflow component does
        from airflow_identity_provider.audit import emit
        emit("login", outcome="success", user_id="alice")
        emit("token", outcome="failure", reason="no_mapped_role", access_token="eyJx.eyJy.zzz")
        logging.getLogger("airflow.something").warning("not an audit line")
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[2])]),
        "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": "audit_logging.LOGGING_CONFIG",
    }
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = target.read_text().splitlines()
    assert [(e["event"], e["outcome"]) for e in map(json.loads, lines)] == [("login", "success"), ("token", "failure")]
    assert "eyJx" not in target.read_text()
