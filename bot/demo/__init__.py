"""`confbot demo`: the sandboxes, the bot and a live page, on loopback."""
