"""The desktop for computer-use agents: the part in the world, and the driver that runs in the box."""
