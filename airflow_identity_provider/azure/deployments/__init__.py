"""ARM template deployments as objects: :mod:`.state` (where a deployment lives, what its state means) and
:mod:`.session` (get, what-if, validate, start, wait, cancel and the failed operations of one deployment),
shared by the deployment operators and the deferrable trigger."""
