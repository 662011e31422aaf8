"""Pure rules of the Azure wing: the ARM scope grammar, connection extras, RBAC evaluation, over-privilege
findings, what-if rules and the template checks.

No network, no azure SDK and no Airflow: these modules import only each other and the package's leaves
(``errors``, ``clouds``, ``entra_ids``). Adapters (credentials, policies, hooks, preflight, deployments)
and entry points (operators, triggers) build on them, never the other way round.
"""
