"""Everything that knows AWS: the aioboto3 adapter, model-driven validation, conversions."""
