"""IdP access tokens presented directly on ``/api/v2`` (``Authorization: Bearer``, Airflow 3.3+): the same
validation as ``POST /auth/token`` (``admit_access_token``), remembered per token so that a client sending the
same token on every request pays one dictionary lookup, not a signature check.

Only *validation* is remembered. ``AuthContext.check_user`` (the directory's word on the principal: disabled,
deleted) runs on every request, cached or not, exactly as it does for an exchanged token's Airflow JWT.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.auth.services.token import AdmittedToken, admit_access_token
from airflow_identity_provider.errors import Refusal

if TYPE_CHECKING:
    from airflow_identity_provider.auth.rules.user import IdentityUser
    from airflow_identity_provider.auth.services.context import AuthContext

log = logging.getLogger(__name__)

# A validated token is trusted this long at most (and never past its exp): long enough that a busy client
# validates once every few minutes, short enough that a change of keys or settings is seen soon.
CACHE_SECONDS = 300.0
# Each entry is one user object and a digest (~1 KB): the bound caps memory whatever clients send.
CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    admitted: AdmittedToken
    until: float


class BearerAdmission:
    """Admit IdP access tokens for one api-server process. Used from the event loop only (no lock needed:
    two concurrent first requests with one token both validate it, and the second write wins)."""

    def __init__(
        self,
        ctx: AuthContext,
        *,
        cache_seconds: float = CACHE_SECONDS,
        max_entries: int = CACHE_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ctx = ctx
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    async def admit(self, token: str) -> IdentityUser | Refused:
        key = hashlib.sha256(token.encode()).digest()  # never keep the token itself
        now = self._clock()
        entry = self._cache.get(key)
        if entry is not None and entry.until > now:
            self._cache.move_to_end(key)
            admitted = entry.admitted
        else:
            if entry is not None:
                del self._cache[key]
            result = await admit_access_token(self._ctx, token)
            if isinstance(result, Refused):
                return result  # refusals are not remembered: the next try may follow a fix at the IdP
            admitted = result
            audit.emit(
                "token",
                outcome="success",
                kind="exchange",  # an IdP access token accepted as Bearer on /api/v2 (validated once, then cached)
                lifetime=max(0, int(admitted.expires_at - now)),
                **audit.user_fields(admitted.user),
                roles=list(admitted.user.roles),
                groups=list(admitted.user.groups),
            )
            until = min(admitted.expires_at, now + self._cache_seconds)
            if until > now:
                self._remember(key, _Entry(admitted, until))
        return self._checked(admitted.user)

    def _remember(self, key: bytes, entry: _Entry) -> None:
        self._cache[key] = entry
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)  # the least recently used

    def _checked(self, user: IdentityUser) -> IdentityUser | Refused:
        """The auth manager's per-request check of a user (the one an exchanged token's JWT goes through)."""
        try:
            return self._ctx.check_user(user)
        except Refusal as err:
            audit.emit("token", outcome="failure", reason=err.reason, kind="exchange", **audit.user_fields(user))
            return Refused.of(err, 401)
        except (ValueError, KeyError) as err:  # deserialize_user's way of refusing a token
            audit.emit("token", outcome="failure", reason="user_refused", kind="exchange", **audit.user_fields(user))
            return Refused("user_refused", f"Principal {user.user_id} may not use the Airflow API: {err}", 401)
