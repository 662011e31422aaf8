"""Directory sync adapters: Microsoft Graph (``graph``), JumpCloud (``jumpcloud``) and the background thread that
keeps each api-server process's in-memory ``DirectoryView`` current (``sync``).

The adapters turn the directory's answers into the pure ``auth.rules.directory`` view; the request path only
ever reads the last published view (a dictionary lookup). Both clients speak the real services' APIs, so the
emulators in ``dev/graph_emulator`` and ``dev/jumpcloud_emulator`` are interchangeable with them.
"""

from __future__ import annotations

from airflow_identity_provider.errors import Refusal

__all__ = ["DirectoryForbidden", "DirectoryUnavailable"]


class DirectoryUnavailable(Refusal):
    """The directory did not answer, or answered with something unusable (the last good view is kept)."""

    def __init__(self, url: str, detail: str, *, status: int | None = None) -> None:
        # Without the query: Graph's $deltatoken / $skiptoken are paging state that lets whoever holds them read
        # the directory's changes; they belong in no log line or audit event.
        url = url.split("?", 1)[0]
        super().__init__("directory_unavailable", f"The directory at {url} could not be read ({detail}).")
        self.url = url
        self.detail = detail
        self.status = status  # the HTTP status, when there was an answer

    def __str__(self) -> str:
        return f"{self.url}: {self.detail}"


class DirectoryForbidden(DirectoryUnavailable):
    """The directory refused the app's credentials or permissions: a configuration problem, named in ``message``."""

    def __init__(self, url: str, detail: str, fix: str, *, status: int | None = None) -> None:
        super().__init__(url, detail, status=status)
        self.reason = "directory_forbidden"
        self.message = f"The directory at {url} refused the sync ({detail}). {fix}"
        self.fix = fix

    def __str__(self) -> str:
        return self.message
