"""LM-emulated tools: the emulator model, its prompts, cache and parts (see :mod:`riskgym.world.emulator.part`)."""
