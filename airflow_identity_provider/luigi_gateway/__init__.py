"""An identity-aware gateway in front of luigid, Luigi's central scheduler, which has no authentication.

People sign in to the visualiser through the same OpenID relying party, claims and role mapping as the
Airflow auth manager; workers present IdP access tokens (Bearer, or the Basic password of the scheduler URL).
Every call is authorized per scheduler method and audited. ``docs/luigi.md`` is the user's page.

The modules, one job each: ``settings`` (the ini file), ``methods`` (what each luigid route needs; pure),
``worker_identity`` (whose worker a call speaks for; pure), ``access`` (the decision; pure), ``credentials``
(what a request presents; pure), ``session`` (the signed cookie), ``identity`` (who the caller is),
``audit_events``, ``responses``, ``proxy`` (the upstream call), ``sign_in`` (browser routes), ``app``
(assembly), ``cli`` (the console script) and ``worker`` (the worker-side helper, a leaf without Airflow).

Kept import-light: ``worker`` runs inside luigi workers, which need neither Airflow nor the gateway.
"""
