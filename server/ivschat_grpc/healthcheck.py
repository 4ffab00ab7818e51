"""`python -m ivschat_grpc.healthcheck`: the probe command that images and manifests name.

It stays at this path because container probes outside this repository run it;
the code lives in ivschat_grpc.cli.healthcheck with the other commands.
"""

import sys

from ivschat_grpc.cli import quiet_grpc_core

if __name__ == "__main__":
    quiet_grpc_core()  # before grpc is imported, below: it reads GRPC_VERBOSITY then

from ivschat_grpc.cli.healthcheck import CHECK, check, main  # after quiet_grpc_core

__all__ = ["CHECK", "check", "main"]

if __name__ == "__main__":
    sys.exit(main())
