"""Executors run a benchmark's units of work: ``fmb embed --shard i/N`` per shard, then ``fmb detect``.

``local`` runs them in this process; ``slurm`` submits them as an array job and a dependent job.
Both share the run plan (:mod:`fmb.executors.plan`), kept in the run folder as ``fmb-run.json``.
"""
