"""What replicas share through Redis, and what each does alone while Redis is gone."""
