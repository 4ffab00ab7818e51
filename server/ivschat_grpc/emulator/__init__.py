"""The local IVS Chat endpoint, for tests, benchmarks and laptops."""

from ivschat_grpc.emulator.faults import FaultRule
from ivschat_grpc.emulator.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    Emulator,
    EmulatorSettings,
    EmulatorState,
)

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_ACCESS_KEY",
    "Emulator",
    "EmulatorSettings",
    "EmulatorState",
    "FaultRule",
]
