"""The objects one Tarcza process shares: settings, engine, sessions and the services built on them.

The HTTP app and the CLI both build a :class:`Runtime`; capabilities attach their services
to it lazily, so a command that needs only the database does not open the key provider.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import SYSTEM_CLOCK, Clock
from core.db import make_engine, session_factory
from core.settings import Settings


class Runtime:
    """Process-wide state; create one per process (or per test)."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    def close(self) -> None:
        """Release what the runtime opened."""
        if "engine" in self.__dict__:
            self.engine.dispose()
