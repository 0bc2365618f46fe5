"""The executor options of ``run`` and ``attack``, and ``riskgym node``: a machine joins a Ray cluster as a node.

See docs/ray.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from riskgym.errors import RiskgymError


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--ray-address`` and ``--ship-images``, for ``run`` and ``attack``."""
    g = p.add_argument_group("where the episodes run (see docs/ray.md)")
    g.add_argument("--executor", choices=("local", "ray"), default="local", help="local: on this machine (the "
                   "default); ray: spread over a Ray cluster's Docker nodes, --concurrency then counting per node")
    g.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster, e.g. 10.0.0.5:6379 (default: a cluster of "
                   "this machine alone)")
    g.add_argument("--ship-images", action="store_true", help="send this machine's images to a node whose images "
                   "differ, instead of refusing the node")


def cluster_options(args: argparse.Namespace) -> Any:
    """The run's :class:`riskgym.running.runner.ClusterOptions` (None: a local run)."""
    from riskgym.running.options import ClusterOptions

    if args.executor == "local":
        for flag, given in (("--ray-address", args.ray_address), ("--ship-images", args.ship_images)):
            if given:
                raise RiskgymError(f"{flag}: give --executor ray too (a local run uses no cluster)")
        return None
    if getattr(args, "monitor", None) == "human":
        raise RiskgymError("--monitor human --executor ray: a person answers at this terminal, not on the cluster's "
                           "nodes; run it locally, or give another monitor")
    return ClusterOptions(address=args.ray_address, per_node=args.concurrency, ship_images=args.ship_images)


def add_parsers(sub: Any) -> None:
    """Add the ``node`` command's parsers."""
    node = sub.add_parser("node", help="make this machine a node of a Ray cluster (riskgym run --executor ray)")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="ACTION")
    start = node_sub.add_parser("start", help="check the Docker Engine and the images, then `ray start` with the "
                                "resource that marks a Docker node",
                                description="Check that this machine can play episodes (its Docker Engine "
                                "answers, the images are built), then start Ray here: the head "
                                "of a new cluster (--head) or a node of one (--address). Arguments after -- go "
                                "to `ray start` as they are (e.g. -- --port=6380 --block).")
    role = start.add_mutually_exclusive_group(required=True)
    role.add_argument("--head", action="store_true", help="start a new cluster with this machine as its head")
    role.add_argument("--address", metavar="ADDR", help="join the cluster whose head is at ADDR (host:port)")
    start.add_argument("--no-docker", action="store_true", help="a node without a Docker Engine (the head of a "
                       "cluster whose nodes run the episodes): it takes none")
    start.add_argument("ray_arguments", nargs="*", metavar="RAY_START_ARG", help="after --: given to `ray start`")
    stop = node_sub.add_parser("stop", help="stop Ray on this machine (`ray stop`)")
    stop.add_argument("ray_arguments", nargs="*", metavar="RAY_STOP_ARG", help="after --: given to `ray stop` (e.g. "
                      "-- --force)")


def node(args: argparse.Namespace) -> int:
    """``riskgym node start|stop``."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        raise RiskgymError("riskgym node: Ray is not installed here; install riskgym[ray] (pip install "
                           "'riskgym[ray]')")
    if args.node_command == "stop":
        return subprocess.call([ray, "stop", *args.ray_arguments])
    from riskgym.running.node import RESOURCE, ray_defaults

    ray_defaults()
    command = [ray, "start", "--head"] if args.head else [ray, "start", f"--address={args.address}"]
    if not args.no_docker:
        from riskgym.world.docker import engine_answers, prune
        from riskgym.world.images import BASE_TAG, image_recipe

        if not engine_answers(within=5):
            raise RiskgymError("riskgym node start: no Docker Engine answers here; start it (or give --no-docker "
                               "for a node that plays no episodes)")
        prune(dead_only=True)  # what an actor of a node that died here left
        recipe = image_recipe(BASE_TAG)
        if recipe is None:
            raise RiskgymError(f"riskgym node start: {BASE_TAG} is not built here; run `riskgym images build` (or "
                               "let the driver ship it: riskgym run --ship-images)")
        command.append(f"--resources={json.dumps({RESOURCE: 1})}")
        print(f"riskgym: this node plays episodes ({BASE_TAG} recipe {recipe})", file=sys.stderr)
    return subprocess.call(command + list(args.ray_arguments))


COMMANDS = {"node": node}
