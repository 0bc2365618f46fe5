"""Importers: other benchmarks' cases as riskgym scenarios (ToolEmu's, :mod:`riskgym.importers.toolemu`)."""
