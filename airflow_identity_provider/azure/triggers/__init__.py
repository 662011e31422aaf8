"""Deferrable triggers for Azure Resource Manager (see :mod:`.deployment`)."""
