"""The soak's sign-in part without processes: how each answer is judged, the promises, and the browser's network
(the load balancer's routing and the user's reloads), on in-memory transports."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from dev.bench.soak import signin
from dev.bench.soak.signin import Browser, GaveUp
from dev.bench.soak.signin_verdicts import (
    GO_ON,
    Fault,
    SignIn,
    Verdict,
    during_outage,
    fault_points,
    figures,
    final,
    judge_me,
    judge_redirect,
    names_idp,
    verdicts,
)

IDP = "http://127.0.0.1:9100"
PUBLIC = "http://127.0.0.1:8000"
# What our /auth/callback answers when the token endpoint is unreachable (auth/routes/pages.py).
UNAVAILABLE_PAGE = (
    "<h1>Identity provider unavailable</h1><p>Airflow could not reach the identity provider at "
    f"{IDP}/token (ConnectError: [Errno 111] Connection refused).</p>"
)


def judge(
    status: int, location: str = "", body: str = "", expected: str = f"{IDP}/auth?", exact: bool = False
) -> Verdict:
    return judge_redirect("/auth/login", status, location, body, expected=expected, idp_origin=IDP, exact=exact)


# --- one answer -------------------------------------------------------------------------------------------


def test_fault_points_follow_the_issue_shares() -> None:
    assert fault_points(300) == (81, 180)
    assert fault_points(40) == (11, 24)
    assert fault_points(1) == (1, 1)


def test_the_unavailable_page_names_the_idp_it_could_not_reach() -> None:
    assert names_idp(UNAVAILABLE_PAGE, IDP)
    assert not names_idp(UNAVAILABLE_PAGE, "http://127.0.0.1:9999")  # another IdP
    assert not names_idp(f"<h1>Service Unavailable</h1> {IDP}", IDP)  # a proxy's 503, not ours


def test_an_expected_redirect_lets_the_sign_in_go_on() -> None:
    assert judge(302, f"{IDP}/auth?client_id=airflow") is GO_ON
    assert judge(303, f"{PUBLIC}/", expected=f"{PUBLIC}/", exact=True) is GO_ON


def test_a_503_naming_the_idp_ends_the_sign_in_as_such() -> None:
    assert judge(503, body=UNAVAILABLE_PAGE) == Verdict("idp_503", "/auth/login")


@pytest.mark.parametrize(
    ("status", "location", "body", "expected", "exact", "says"),
    [
        (500, "", "Internal Server Error", f"{IDP}/auth?", False, "HTTP 500 Internal Server Error"),
        (503, "", "<h1>Service Unavailable</h1>", f"{IDP}/auth?", False, "HTTP 503"),  # does not name the IdP
        (200, "", "<h1>Sign-in refused</h1>", f"{IDP}/auth?", False, "HTTP 200"),
        (400, "", "state_mismatch", f"{IDP}/auth?", False, "HTTP 400 state_mismatch"),
        # back to the login after the callback: the start of a redirect loop
        (302, f"{PUBLIC}/auth/login?next=x", "", f"{PUBLIC}/", True, "302 to http://127.0.0.1:8000/auth/login"),
        (302, f"{PUBLIC}/home", "", f"{PUBLIC}/", True, "not http://127.0.0.1:8000/"),  # exact: no prefix match
        (307, "", "", f"{IDP}/auth?", False, "(no Location)"),
    ],
)
def test_anything_else_is_other_and_says_what(
    status: int, location: str, body: str, expected: str, exact: bool, says: str
) -> None:
    verdict = judge(status, location, body, expected, exact)
    assert verdict.outcome == "other"
    assert verdict.detail.startswith("/auth/login: ")
    assert says in verdict.detail


def test_me_must_name_the_user_who_signed_in() -> None:
    assert judge_me(200, '{"id": "alice", "username": "Alice Admin"}', "alice") == Verdict("success")
    wrong = judge_me(200, '{"id": "bob", "username": "Bob Viewer"}', "alice")
    assert wrong.outcome == "other"
    assert "signed in as 'bob', not 'alice'" in wrong.detail
    assert judge_me(401, '{"detail": "Not authenticated"}', "alice").outcome == "other"
    assert judge_me(200, "<html>", "alice").outcome == "other"
    assert judge_me(200, '["alice"]', "alice").outcome == "other"


def test_a_500_anywhere_makes_the_sign_in_other_even_when_it_ended_well() -> None:
    assert final(Verdict("success"), [307, 302, 303, 200]) == ("success", "")
    assert final(Verdict("idp_503", "/auth/callback"), [307, 302, 503]) == ("idp_503", "/auth/callback")
    outcome, detail = final(Verdict("success"), [307, 302, 500, 303, 200])
    assert outcome == "other"
    assert "500" in detail


def test_a_walk_without_an_outcome_is_other_with_its_reason() -> None:
    assert final(Verdict(None, "ReadTimeout: timed out"), [307]) == ("other", "ReadTimeout: timed out")
    assert final(Verdict(), []) == ("other", "unfinished")


# --- the promises -----------------------------------------------------------------------------------------

ROTATED = Fault("key rotated", after_started=3, began=2.0, done=2.1, note="new signing key k2")
RESTARTED = Fault("IdP restarted", after_started=6, began=5.0, done=6.0, note="down 1.0 s")
STATUSES = {200: 9, 302: 10, 303: 9, 307: 10, 503: 1}


def good_run() -> list[SignIn]:
    """Ten sign-ins of 1 s, one starting every 0.9 s: some before, during and after each fault."""
    runs = [SignIn(i, "success", started=i * 0.9, ended=i * 0.9 + 1.0) for i in range(10)]
    runs[6] = SignIn(6, "idp_503", "/auth/callback", started=5.4, ended=6.2, retries=2)
    return runs


def by_promise(results: list[SignIn], **overrides: object) -> dict[str, tuple[bool, str]]:
    arguments: dict[str, object] = {"planned": 10, "statuses": STATUSES, "faults": [ROTATED, RESTARTED]}
    arguments.update(overrides)
    return {e.promise: (e.met, e.observed) for e in verdicts(results, **arguments)}  # type: ignore[arg-type]


def test_a_good_run_keeps_every_promise() -> None:
    found = by_promise(good_run())
    assert all(met for met, _ in found.values()), found
    assert found["every sign-in: success or 503 naming the IdP"][1] == "9 success, 1 x 503 naming the IdP, 0 other"
    assert found["key rotated mid-run (sign-ins done before and after)"][1] == (
        "after 3 of 10 started: 2 ended before, 6 succeeded after"
    )
    assert found["IdP restarted mid-run (sign-ins done before and after)"][1] == (
        "after 6 of 10 started: 5 ended before, 3 succeeded after"
    )


def test_a_500_from_a_replica_breaks_its_promise() -> None:
    met, observed = by_promise(good_run(), statuses={**STATUSES, 500: 2})["0 responses with status 500 (our replicas)"]
    assert (met, observed) == (False, "2")


def test_an_other_sign_in_breaks_its_promise_and_is_shown() -> None:
    results = good_run()
    results[2] = SignIn(2, "other", "/ui/auth/me: signed in as 'bob', not 'alice'", started=1.8, ended=2.8)
    met, observed = by_promise(results)["every sign-in: success or 503 naming the IdP"]
    assert not met
    assert "1 other; first: #2 /ui/auth/me: signed in as 'bob', not 'alice'" in observed


def test_sign_ins_not_accounted_for_break_the_promise() -> None:
    met, observed = by_promise(good_run()[:8])["every sign-in: success or 503 naming the IdP"]
    assert not met
    assert "8 of 10 accounted for" in observed


def test_a_sign_in_over_ten_seconds_breaks_its_promise() -> None:
    results = good_run()
    results[9] = SignIn(9, "success", started=8.1, ended=18.6)
    assert by_promise(results)["no sign-in over 10 s"] == (False, "1 over, max 10.5 s")
    assert by_promise(good_run())["no sign-in over 10 s"] == (True, "max 1.0 s")
    assert by_promise([SignIn(0, "other", "not started")], planned=1)["no sign-in over 10 s"] == (False, "none timed")


def test_a_fault_that_did_not_happen_breaks_its_promise() -> None:
    never = Fault("IdP restarted", error="the load ended before 6 sign-ins started")
    failed = Fault("IdP restarted", 6, 5.0, None, error="LocalIdpError: local IdP exited with code 2")
    for fault in (never, failed):
        met, observed = by_promise(good_run(), faults=[ROTATED, fault])[
            "IdP restarted mid-run (sign-ins done before and after)"
        ]
        assert not met
        assert observed == fault.error


def test_a_fault_with_no_success_after_it_is_not_mid_run() -> None:
    late = Fault("IdP restarted", after_started=10, began=9.0, done=9.5)
    met, observed = by_promise(good_run(), faults=[ROTATED, late])[
        "IdP restarted mid-run (sign-ins done before and after)"
    ]
    assert not met
    assert observed.endswith("0 succeeded after")
    early = Fault("key rotated", after_started=1, began=0.1, done=0.2)
    met, observed = by_promise(good_run(), faults=[early, RESTARTED])[
        "key rotated mid-run (sign-ins done before and after)"
    ]
    assert not met
    assert "0 ended before" in observed


def test_figures_show_the_spread_outcomes_reloads_and_statuses() -> None:
    rows = dict(figures(good_run(), 10, 5, STATUSES, [ROTATED, RESTARTED], 9.5))
    assert rows["sign-ins, concurrency"].startswith("10 @ 5")
    assert rows["key rotated"] == "after 3 started, at 2.0 s; new signing key k2"
    assert rows["p50 / p95 / max"] == "1000 / 1000 / 1000 ms"
    assert rows["success / 503 naming IdP / other"] == "9 / 1 / 0"
    assert rows["503 pages at"] == "/auth/callback 1"
    assert rows["IdP pages reloaded (refused or cut)"] == "2 in 1 sign-ins"
    assert rows["statuses from our replicas"] == "200: 9, 302: 10, 303: 9, 307: 10, 503: 1"
    missing = dict(figures([], 10, 5, Counter(), [Fault("IdP restarted", error="not done")], 0.0))
    assert missing["IdP restarted"] == "not done"
    assert missing["p50 / p95 / max"] == "n/a"


def test_a_503_naming_the_idp_counts_only_while_the_idp_was_down() -> None:
    restarted = [ROTATED, RESTARTED]  # down from 5.0 to 6.0 s
    during = SignIn(1, "idp_503", "/auth/callback", started=4.5, ended=5.2)
    soon_after = SignIn(2, "idp_503", "/auth/callback", started=15.9, ended=16.5)  # started within 10 s of 6.0
    before = SignIn(3, "idp_503", "/auth/callback", started=1.0, ended=1.5)
    late = SignIn(4, "idp_503", "/auth/login", started=16.1, ended=16.4)
    judged = during_outage([during, soon_after, before, late], restarted)
    assert [r.outcome for r in judged] == ["idp_503", "idp_503", "other", "other"]
    assert judged[2].detail == "503 naming the IdP at /auth/callback while the IdP was up"
    assert judged[3].detail == "503 naming the IdP at /auth/login while the IdP was up"
    # without a restart no 503 is promised; other outcomes are left alone
    assert during_outage([during], [ROTATED])[0].outcome == "other"
    assert during_outage([good_run()[0]], [])[0] == good_run()[0]


# --- the browser's network (in memory) --------------------------------------------------------------------


def browser(inner: httpx.BaseTransport, *, reload_for: float = 5.0, give_up_for: float = 10.0) -> Browser:
    now = time.monotonic()
    return Browser(
        public=PUBLIC,
        idp_origin=IDP,
        backend="http://127.0.0.1:8001",
        reload_until=now + reload_for,
        give_up_at=now + give_up_for,
        inner=inner,
    )


def test_the_balancer_sends_public_requests_to_its_replica_and_keeps_their_statuses() -> None:
    seen: list[tuple[str, str]] = []

    def replica(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["host"]))
        return httpx.Response(303, headers={"location": "/"})

    net = browser(httpx.MockTransport(replica))
    with httpx.Client(transport=net) as client:
        first = client.get(f"{PUBLIC}/auth/callback?code=c")
        net.backend = "http://127.0.0.1:8002"
        client.get(f"{PUBLIC}/ui/auth/me")
    assert seen == [
        ("http://127.0.0.1:8001/auth/callback?code=c", "127.0.0.1:8000"),  # the Host stays the public one
        ("http://127.0.0.1:8002/ui/auth/me", "127.0.0.1:8000"),
    ]
    assert str(first.url) == f"{PUBLIC}/auth/callback?code=c"  # the browser resolves Location against this
    assert net.statuses == [303, 303]
    assert net.idp_statuses == []


def test_an_idp_page_that_does_not_connect_is_reloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "RELOAD_PAUSE", 0.0)
    failures = [httpx.ConnectError("refused"), httpx.RemoteProtocolError("Server disconnected")]

    def idp(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return httpx.Response(200, text="<form></form>")

    net = browser(httpx.MockTransport(idp))
    with httpx.Client(transport=net) as client:
        assert client.post(f"{IDP}/interaction/u1/login", data={"login": "alice"}).status_code == 200
    assert net.retries == 2
    assert net.idp_statuses == [200]
    assert net.statuses == []


def test_reloads_stop_at_the_sign_in_budget_and_replicas_are_never_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "RELOAD_PAUSE", 0.0)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    net = browser(httpx.MockTransport(down), reload_for=0.0)
    with httpx.Client(transport=net) as client, pytest.raises(httpx.ConnectError):
        client.get(f"{IDP}/auth")
    assert net.retries == 0
    net = browser(httpx.MockTransport(down))
    with httpx.Client(transport=net) as client, pytest.raises(httpx.ConnectError):
        client.get(f"{PUBLIC}/auth/login")  # a replica that refuses is a failure, not a reload
    assert net.retries == 0


def test_nothing_is_sent_past_the_give_up_time() -> None:
    net = browser(httpx.MockTransport(lambda request: httpx.Response(200)), give_up_for=0.0)
    with httpx.Client(transport=net) as client, pytest.raises(GaveUp, match="gave up at /auth/login"):
        client.get(f"{PUBLIC}/auth/login")
