"""Running the service: settings, assembly, the drain, metrics, logs and traces."""
