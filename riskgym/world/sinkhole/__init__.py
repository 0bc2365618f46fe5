"""The sinkhole: a resolver and a TCP sinkhole in the box's network namespace (see :mod:`riskgym.world.sinkhole.part`)."""
