"""Monitors and guardrails: scoring each proposed tool call, before it runs, against the graders' ground truth.

:mod:`~riskgym.monitoring.monitors` holds the monitors riskgym ships and reads a ``--monitor`` spec;
:mod:`~riskgym.monitoring.offline` scores recorded traces (cached); :mod:`~riskgym.monitoring.evaluate` and
:mod:`~riskgym.monitoring.metrics` say how well scores separate risky steps from benign ones;
:mod:`~riskgym.monitoring.effect` what blocking did to risk and to utility.
"""
