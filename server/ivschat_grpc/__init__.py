"""ivschat-grpc: a gRPC facade over Amazon IVS Chat's CreateRoom."""

__all__ = ["__version__"]
__version__ = "0.1.0"
