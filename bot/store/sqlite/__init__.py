"""The embedded SQLite store: the default implementation of the roles in bot.store.base.

One module per area, all SQL next to the method that runs it:

- connection: the base, which owns the connections, the one transaction helper and the
  wrapping of SQLite errors into StoreError
- migrations/: the numbered schema migrations and what applies them
- (bot.store.codec, shared with PostgreSQL: dataclasses to rows and back)
- stories: /news pages, search and topics (StoryReader)
- seeds: the seed index and applying a reload (SeedBookkeeping)
- digests: digest settings and the stories not yet delivered to a channel (DigestLedger)
- ledger: one row per server and local date, with the messages it sends (DigestLedger)
- state, lock: values kept between runs and one bot per database (State)
- task_locks: one process at a time runs a task such as a seed reload (TaskLocks)
- budget: the send rate shared by every process on the database (SendBudget)
- dbfile: the database file held open: noticing it deleted or replaced, and its flock
"""

from __future__ import annotations

from bot.models import Story
from bot.store.base import EncodedStory
from bot.store.codec import encode_story
from bot.store.sqlite.budget import SendBudgetMixin
from bot.store.sqlite.digests import DigestsMixin
from bot.store.sqlite.ledger import LedgerMixin
from bot.store.sqlite.lock import InstanceLockMixin
from bot.store.sqlite.seeds import SeedsMixin
from bot.store.sqlite.state import StateMixin
from bot.store.sqlite.stories import StoriesMixin
from bot.store.sqlite.task_locks import TaskLocksMixin


class SqliteStore(
    StoriesMixin,
    SeedsMixin,
    DigestsMixin,
    LedgerMixin,
    StateMixin,
    InstanceLockMixin,
    SendBudgetMixin,
    TaskLocksMixin,
):
    """Stories, topics, seed bookkeeping and digests in one SQLite file."""

    @staticmethod
    def encode_story(story: Story) -> EncodedStory:
        # A static method (not the codec function assigned to the class) for the type checker;
        # picklable by name all the same, for the reload's worker processes.
        return encode_story(story)


__all__ = ["SqliteStore", "encode_story"]
