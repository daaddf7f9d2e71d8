"""The ASGI app: Slack's endpoints, the Canvas OAuth callback, /healthz and /metrics."""
