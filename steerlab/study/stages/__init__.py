"""The study's stages, one module each, in the order :data:`steerlab.study.pipeline.STAGES`
runs them.

A stage module has ``NAME`` and either ``units(ctx) -> list[Unit]`` (cached units of work,
each resumable; see :mod:`steerlab.study.cache`) or ``run(ctx) -> dict`` (a stage that
manages its own outputs: ``train`` and ``report``). Every stage takes the shared
:class:`~steerlab.study.context.StudyContext`, which owns the paths and cache keys. To add a
stage, write its module and add it to ``STAGE_MODULES`` in :mod:`steerlab.study.pipeline`.
"""
