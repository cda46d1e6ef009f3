"""Tekton: nothing to detect, the Task passes the ref as flags.

Tekton has no predefined variables for the ref: a Task gets the revision as
params and passes them on as ``--ref``/``--sha``/``--time``. The Task also sets
``ACR_CI_PLATFORM=tekton``; with it, a ref taken from the flags is reported as
``source="tekton"`` (the values did come from the pipeline), GitHub and GitLab
variables in the environment are ignored, and whatever the flags leave out
comes from the workspace's git checkout (``source="local"`` if the ref name
itself does).
"""

from __future__ import annotations

LABEL = "tekton"
"""``RefContext.source`` for a ref passed as flags by a Tekton Task."""
