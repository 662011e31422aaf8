"""Sign-in, token exchange and sign-out as functions that return results (or a refusal), not responses.

The routes in ``auth.routes`` turn those results into redirects, cookies and pages; nothing here knows
about the auth manager class, only the small :class:`~.context.AuthContext` it offers.
"""
