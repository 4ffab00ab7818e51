"""Creating exactly once, pacing, and request_id stores: no grpc and no botocore here."""
