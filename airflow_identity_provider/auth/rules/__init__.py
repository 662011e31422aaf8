"""Pure rules: settings parsing, roles and the role policy, claims and identities, ID-token and machine-token
checks, Entra's tenant rules, the login-state cookie, audit lines.

No network and no imports from ``auth.idp``, ``auth.services``, ``auth.routes`` or ``auth.manager``.
"""
