"""What several commands share: the settings (or one error line), ``--provider``, and the DAG index read once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_identity_provider.auth.rules.settings import DEFAULT_NAME, AuthSettings, SettingsError, load_all_settings
from airflow_identity_provider.provider_info.auth_config import SECTION

if TYPE_CHECKING:
    from airflow_identity_provider.auth.catalog.dag_index import DagIndex, Entry

_MAX_ERROR = 200


def all_settings_or_exit() -> dict[str, AuthSettings]:
    try:
        return load_all_settings()
    except SettingsError as err:
        sys.exit(f"error: {err}")


def selected(providers: dict[str, AuthSettings], args: argparse.Namespace) -> dict[str, AuthSettings]:
    """Every provider, or the one ``--provider`` names (else exit naming the configured ones)."""
    wanted = getattr(args, "provider", None)
    if not wanted:
        return providers
    if wanted not in providers:
        sys.exit(f"error: --provider: no provider is named {wanted!r}; configured: {', '.join(providers)}")
    return {wanted: providers[wanted]}


def section_of(name: str) -> str:
    """The airflow.cfg section a provider's settings live in, for "change this" advice."""
    return SECTION if name == DEFAULT_NAME else f"{SECTION}_{name}"


def load_dag_index() -> tuple[DagIndex, str | None]:
    """The DAG index as the api-server sees it, loaded once from the metadata DB (no refresh thread).

    Returns the index and, when the DB could not be read, why (first line): the index is then empty, and
    tags, bundles and access_control are unknown. The loader is wrapped rather than left to
    ``DagIndex.refresh`` so that the failure reaches the user as one line instead of a logged traceback.
    """
    from airflow_identity_provider.auth.catalog import dag_index

    failures: list[str] = []

    def load(previous: Mapping[str, Entry]) -> Mapping[str, Entry]:
        try:
            return dag_index.load_from_db(previous)
        except Exception as err:
            lines = str(err).strip().splitlines()
            failures.append(f"{type(err).__name__}: {lines[0] if lines else ''}"[:_MAX_ERROR])
            return previous

    index = dag_index.DagIndex(load=load)
    index.refresh()
    return index, failures[0] if failures else None


__all__ = ["all_settings_or_exit", "load_dag_index", "section_of", "selected"]
