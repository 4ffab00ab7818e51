"""ivschat-grpc: a gRPC facade over Amazon IVS Chat, and a local IVS Chat endpoint for tests."""

__all__ = ["__version__"]
__version__ = "0.1.0"
