"""Plain JSON values from chatdb's results, for every layer that writes JSON.

Results keep Python values (ids, datetimes, enums) in ``as_dict()``;
:func:`to_jsonable` turns them into what ``json.dumps`` takes. The command
line's renderer and the export manifest use the same function, so a value is
written the same way wherever it appears.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Convert values to JSON: ids as strings, timestamps as ISO 8601 with offset."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "as_dict"):
        return to_jsonable(value.as_dict())
    return value
