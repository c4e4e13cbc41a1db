"""Discord's limits that newsbot keeps to, in one place (characters unless said otherwise).

Discord refuses a message, an answer or a component that exceeds them, so the code that builds
one cuts or splits to fit these. Checked against the Discord API documentation.
"""

from __future__ import annotations

# An embed.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024
AUTHOR_LIMIT = 256

# A message.
CONTENT_LIMIT = 2000
MESSAGE_TEXT_LIMIT = 6000  # all embeds of one message together
EMBEDS_PER_MESSAGE = 10
NONCE_LIMIT = 25  # longer nonces are refused

# Requests a bot token may make per second, all its processes together (the global limit).
GLOBAL_REQUESTS_PER_SECOND = 50
# Requests a second the shared send budget leaves unused under the global limit, for what no
# budget paces exactly: discord.py repeats a refused request by itself, and a request reaches
# Discord a moment after its slot (a busy loop, the network), so that a second of sends there
# may hold a little more than a second's slots. With 1, the scale-out run met the limit.
SEND_HEADROOM = 3
# The most digest messages a second, all processes together: the global limit less the
# headroom and the shared budget's burst (2 at this rate; see bot.pacing.burst_for).
MAX_SEND_RATE = GLOBAL_REQUESTS_PER_SECOND - SEND_HEADROOM - 2

# Autocomplete and components.
AUTOCOMPLETE_CHOICES = 25  # choices in one answer
CHOICE_LIMIT = 100  # a choice's name and value
CUSTOM_ID_LIMIT = 100  # a component's custom id
