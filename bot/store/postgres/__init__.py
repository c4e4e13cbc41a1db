"""The PostgreSQL store (asyncpg): the roles of bot.store.base on a server, for deployments that
already run one or want the database apart from the bot's host.

One module per area, mirroring bot/store/sqlite/, all SQL next to the method that runs it:

- connection: the base, which owns the connection pool, the one transaction helper and the
  wrapping of PostgreSQL errors into StoreError
- migrations/: the numbered schema migrations and what applies them
- codec: dataclasses to rows and back (bot.store.codec's, with dates as DATE)
- stories: /news pages, word search and topics (StoryReader)
- seeds: the seed index and applying a reload (SeedBookkeeping)
- digests: digest settings and the stories not yet delivered to a channel (DigestLedger)
- ledger: one row per server and local date, with the messages it sends (DigestLedger)
- state, lock: values kept between runs and one bot per database (State)
- task_locks: one process at a time runs a task such as a seed reload (TaskLocks)
- budget: the send rate shared by every process on the database (SendBudget)
"""

from __future__ import annotations

from bot.models import Story
from bot.store.base import EncodedStory
from bot.store.postgres.budget import SendBudgetMixin
from bot.store.postgres.codec import encode_story
from bot.store.postgres.digests import DigestsMixin
from bot.store.postgres.ledger import LedgerMixin
from bot.store.postgres.lock import InstanceLockMixin
from bot.store.postgres.seeds import SeedsMixin
from bot.store.postgres.state import StateMixin
from bot.store.postgres.stories import StoriesMixin
from bot.store.postgres.task_locks import TaskLocksMixin


class PostgresStore(
    StoriesMixin,
    SeedsMixin,
    DigestsMixin,
    LedgerMixin,
    StateMixin,
    InstanceLockMixin,
    SendBudgetMixin,
    TaskLocksMixin,
):
    """Stories, topics, seed bookkeeping and digests in one PostgreSQL database."""

    @staticmethod
    def encode_story(story: Story) -> EncodedStory:
        # A static method, picklable by name, for the reload's worker processes.
        return encode_story(story)


__all__ = ["PostgresStore"]
