"""Operating the bot: `confbot check`, logging, Prometheus metrics, the settings table."""
