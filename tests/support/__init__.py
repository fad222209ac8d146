"""Helpers the test modules share: servers and tools beside the suite's cluster."""
