"""The ``smartmirror`` command: ``app`` wires the subcommands, one module per command (analyze, eval, serve, train,
agent)."""
