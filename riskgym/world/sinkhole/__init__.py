"""The sinkhole: a resolver and a TCP sinkhole in the box's network namespace (:mod:`.part`)."""
