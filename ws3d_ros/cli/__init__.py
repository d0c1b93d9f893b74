"""The ``ws3d`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``add_parser(subparsers)`` registering itself
with ``func=run`` where ``run(args) -> int`` is the exit code.
"""
