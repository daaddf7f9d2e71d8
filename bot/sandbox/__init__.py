"""Faithful local stand-ins for Canvas and Slack, for the demo, the tests and the benchmarks."""
