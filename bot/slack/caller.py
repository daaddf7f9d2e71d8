"""Who ran a command, and where: the one value every `/conferences` handler starts from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    team_id: str
    user_id: str
    channel_id: str

    @property
    def in_channel(self) -> bool:
        """A public or private channel (subscriptions and digests live there), not a DM."""
        return self.channel_id.startswith(("C", "G"))
