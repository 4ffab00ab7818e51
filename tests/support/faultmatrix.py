"""The fault matrix's rows, which tests/test_fault_matrix.py fills and conftest prints."""

# Rows of the fault matrix (tests/test_fault_matrix.py), printed at the end of the run:
# (fault, style, with request_id, status, rooms (or configurations) made, seconds).
FAULT_MATRIX: list[tuple[str, str, bool, str, int, float]] = []
