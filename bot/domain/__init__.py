"""Pure rules: Canvas data, live windows and sessions, diffs, outbox payloads, schedules.

Nothing here does I/O or imports an I/O library; every other room may import it."""
