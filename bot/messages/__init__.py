"""What confbot says in Slack: pure functions from domain values to Block Kit and mrkdwn."""
