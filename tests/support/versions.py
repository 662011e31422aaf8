"""Test-side Airflow version differences (the package's own are in airflow_identity_provider.version_compat)."""

from __future__ import annotations

import importlib.util

import pytest

from airflow_identity_provider import version_compat

# BaseAuthManager.revoke_token and the revoked_token table came with Airflow 3.2 (remove when the floor is 3.2).
HAS_TOKEN_REVOCATION = importlib.util.find_spec("airflow.models.revoked_token") is not None
needs_token_revocation = pytest.mark.skipif(
    not HAS_TOKEN_REVOCATION, reason=f"Airflow {version_compat.AIRFLOW_VERSION_STRING} cannot revoke tokens (3.2+)"
)
# AuthManagerRefreshTokenExpiredException came with 3.1.7 (remove when the floor is 3.1.7).
needs_session_end_on_refresh = pytest.mark.skipif(
    not version_compat.CAN_END_SESSION_ON_REFRESH,
    reason=f"Airflow {version_compat.AIRFLOW_VERSION_STRING} cannot end a session from refresh_user (3.1.7+)",
)

# GET /ui/auth/me (the signed-in user as JSON) came with 3.2; on 3.1 the path is the UI's HTML page.
HAS_UI_AUTH_ME = version_compat.AIRFLOW_V_3_2_PLUS

# For scripts run in a subprocess: DagBag moved to airflow.dag_processing.dagbag in 3.2 (remove when the floor
# is 3.2).
IMPORT_DAGBAG = """
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import DagBag
"""


def dagbag_class() -> type:
    """Airflow's DagBag, imported when asked (it loads airflow.models)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1; remove when the floor is 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag


# [core] multi_team with teams, team-owned DAG bundles and team_name on connections came with 3.2 (remove when the
# floor is 3.2).
needs_multi_team = pytest.mark.skipif(
    not version_compat.AIRFLOW_V_3_2_PLUS,
    reason=f"Airflow {version_compat.AIRFLOW_VERSION_STRING} has no multi-team mode (3.2+)",
)


def _can_take_idp_bearer() -> bool:
    """BaseAuthManager.get_fastapi_middlewares and the core's USER_INJECTED_BY_TRUSTED_MIDDLEWARE came with 3.3:
    before, IdP access tokens are only exchanged at POST /auth/token (remove when the floor is 3.3). Only the hook
    is looked at: importing core_api.security for the marker costs half a second per test session."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager

    return hasattr(BaseAuthManager, "get_fastapi_middlewares")


HAS_IDP_BEARER = _can_take_idp_bearer()
needs_idp_bearer = pytest.mark.skipif(
    not HAS_IDP_BEARER,
    reason=f"Airflow {version_compat.AIRFLOW_VERSION_STRING} lets no auth manager authenticate /api/v2 (3.3+)",
)
