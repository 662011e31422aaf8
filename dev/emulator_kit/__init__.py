"""Shared machinery of the directory emulators (Microsoft Graph, JumpCloud): HTTPS listener,
faults, request statistics, the process lifecycle for tests and the demo."""
