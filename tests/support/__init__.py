"""Helpers the tests share: the environment, processes, servers, waiting and rich status."""
