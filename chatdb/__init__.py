"""chatdb: the schema, migrations, repositories and admin CLI of a chatbot's conversation store."""

from __future__ import annotations

__version__ = "0.1.0"
