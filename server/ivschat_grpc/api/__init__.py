"""The gRPC surface: servicers, the batch stream, and the wrappers every call passes through."""
