"""Slack Web API clients: the process's HTTP session, users.info look-ups, installations."""
