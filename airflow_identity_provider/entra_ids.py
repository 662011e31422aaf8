"""Microsoft Entra identifiers both wings read: the GUID form and the multi-tenant authority names.

A leaf: imports nothing from the package (standard library only).

* A GUID is the 8-4-4-4-12 hex form (directory/tenant ids, object ids, client ids, subscription ids).
  :data:`GUID_RE` accepts either case, which is what ARM and the Entra portal accept as input;
  :func:`is_canonical_guid` accepts only the lower-case form that Entra puts inside tokens (``tid``,
  ``oid``), so a comparison against a token claim is exact.
* ``organizations`` and ``common`` are multi-tenant authorities (work/school accounts of any tenant;
  plus personal accounts for ``common``); ``consumers`` is personal Microsoft accounts only. See
  https://learn.microsoft.com/entra/identity-platform/msal-client-application-configuration#authority
"""

from __future__ import annotations

import re

__all__ = [
    "CONSUMERS",
    "GUID_RE",
    "MULTI_TENANT",
    "MULTI_TENANT_NAMES",
    "is_canonical_guid",
    "is_guid",
]

# fullmatch-ready: no anchors, so use GUID_RE.fullmatch(text).
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CANONICAL_GUID_RE = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")

CONSUMERS = "consumers"
# Authorities under which users of more than one tenant sign in to a work/school app.
MULTI_TENANT = frozenset({"common", "organizations"})
# Every authority name that is not one directory (what a single-tenant credential must not be given).
MULTI_TENANT_NAMES = MULTI_TENANT | {CONSUMERS}


def is_guid(text: object) -> bool:
    """True for a ``str`` in the 8-4-4-4-12 hex form (either case), nothing around it."""
    return isinstance(text, str) and GUID_RE.fullmatch(text) is not None


def is_canonical_guid(text: object) -> bool:
    """True for a ``str`` GUID in lower case, the form Entra issues in ``tid`` and ``oid`` claims."""
    return isinstance(text, str) and _CANONICAL_GUID_RE.fullmatch(text) is not None
