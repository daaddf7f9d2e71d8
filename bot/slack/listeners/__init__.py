"""Bolt listeners, one small module per kind, each registered on the app with what it uses.

As bolt-python's own apps organise them (a `register(app, ...)` per module): every listener acks first
and does Canvas or database work after the ack, so Slack's 3-second deadline never depends on Canvas.
"""
