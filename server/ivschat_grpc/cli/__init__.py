"""The ivschat-grpc command, one module per subcommand."""

from ivschat_grpc.cli.command import main

__all__ = ["main"]
