"""The troubleshooting page has exactly one entry per reason code the package's source can emit, and the
collector (dev/docs/reason_codes.py) finds codes in each of the shapes the package writes them in."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from dev.docs.reason_codes import collect, normalise_pattern

PAGE = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def entries() -> list[str]:
    return [normalise_pattern(code) for code in re.findall(r"^### `([^`]+)`$", PAGE.read_text(), re.MULTILINE)]


def test_every_emitted_reason_code_has_one_entry() -> None:
    codes = collect()
    listed = entries()
    assert sorted(c for c in set(listed) if listed.count(c) > 1) == [], "one entry per code"
    missing = {code: found.where for code, found in codes.items() if code not in listed}
    assert missing == {}, "add an entry to docs/troubleshooting.md for each"
    stale = sorted(set(listed) - set(codes))
    assert stale == [], "entries for codes nothing emits any more"


def test_the_collector_sees_codes_of_every_part_of_the_package() -> None:
    codes = set(collect())
    assert {
        "invalid_aud",  # TokenRejected(reason, message)
        "state_mismatch",  # Refused(reason, message, status)
        "bad_setting",  # SettingsError: super().__init__("bad_setting", ...)
        "directory_forbidden",  # self.reason = ...
        "token_endpoint_*",  # an f-string
        "account_*",
        "not_permitted",  # audit.emit(..., reason="not_permitted")
        "preflight_refused",  # a parameter's default
        "outside_scope",  # refuse("outside_scope", ...): a local function whose first parameter is rule
        "reference_outside_scope",  # the default of a parameter named rule
        "delete",  # Violation(rule, ...)
        "cli_code_reused",
        "template_spec_changed",
    } <= codes
    assert len(codes) > 100


def test_the_collector_on_each_shape(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "errors.py").write_text(
        textwrap.dedent(
            '''
            from dataclasses import dataclass
            from typing import ClassVar

            class Refusal(Exception):
                def __init__(self, reason, message):
                    self.reason = reason

            class Plain(Refusal):
                pass

            class Fixed(Refusal):
                def __init__(self, url):
                    super().__init__("fixed_code", f"at {url}")

            class Later(Fixed):
                def __init__(self, url):
                    super().__init__(url)
                    self.reason = "later_code"

            @dataclass
            class Result:
                reason: str
                message: str

            @dataclass
            class Decision:
                kind: ClassVar[str] = "decision"
                status: int
                reason: str

            def refuse(rule, message, where): ...

            def audit(event, *, reason=None): ...

            def run(err, kind, name):
                raise Plain("plain_code", "a message with spaces is never a code")
                Result(f"prefix_{kind}", "m")
                Decision(403, "second_field_code")
                refuse("positional_rule", "m", "w")
                audit("login", reason="keyword_code")
                audit("x", reason=err.reason if err else "fallback_code")
                reason = err.reason or "assigned_code"
                reason = d.get("not_a_code_but_a_key")
                Plain(f"The {name} claim", "an f-string message is no code either")

            def defaulted(message, reason: str = "default_code"): ...
            '''
        )
    )
    assert set(collect(package)) == {
        "fixed_code", "later_code", "plain_code", "prefix_*", "positional_rule", "keyword_code", "fallback_code",
        "assigned_code", "default_code", "second_field_code",
    }  # fmt: skip


def test_patterns_compare_in_the_docs_spelling() -> None:
    assert normalise_pattern("token_endpoint_<error>") == "token_endpoint_*"
    assert normalise_pattern("invalid_aud") == "invalid_aud"
