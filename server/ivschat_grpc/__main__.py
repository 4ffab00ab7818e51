"""python -m ivschat_grpc runs the ivschat-grpc command."""

import sys

from ivschat_grpc.cli import main

sys.exit(main())
