"""Builders: a :class:`BuildPlan` in, an OCI image layout (an index over one manifest per
platform) out. Builders only build; pushing goes through :mod:`acr_ci.registry`.

* :mod:`.base` — the :class:`Builder` Protocol, :class:`BuildJob`, :class:`BuildResult`,
  streaming a builder's log;
* :mod:`.buildah` / :mod:`.buildx` — the two builders; :mod:`.select` — ``auto``;
* :mod:`.context` — paths and base-image registries; :mod:`.layout` — finishing the layout;
* :mod:`.service` — plan → job, and where its layout goes (the chain runs the builder).
"""

from acr_ci.build.base import Builder, BuildJob, BuildResult, LogSink
from acr_ci.build.buildah import BuildahBuilder
from acr_ci.build.buildx import BuildxBuilder
from acr_ci.build.select import select_builder
from acr_ci.build.service import layout_folder, prepare_job

__all__ = [
    "BuildJob",
    "BuildResult",
    "BuildahBuilder",
    "Builder",
    "BuildxBuilder",
    "LogSink",
    "layout_folder",
    "prepare_job",
    "select_builder",
]
