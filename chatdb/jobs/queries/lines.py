"""The jsonl export line, in both directions, written once in SQL.

PostgreSQL builds every line (:func:`line_select`): ``row_to_json`` over
explicit columns, timestamps in UTC as its JSON output writes them (``BC``,
years past 9999, ``infinity``), ``metadata`` as the JSON it is. A message whose
``metadata`` is the JSON value ``null`` (not SQL ``NULL``) carries
``"metadata_is_json_null": true`` beside it, so the two stay apart. export
writes these lines, and prune rebuilds them over the locked current rows to
compare them byte for byte with the file.

PostgreSQL also reads them back (:data:`CHECK_LINES`, :data:`INSERT_LINES`):
the same chain of conversions (``jsonb`` for the line, ``uuid`` and
``timestamptz`` input functions, the schema's CHECK expressions) first checks a
batch without writing anything, then inserts it, so whatever the check accepts
the insert accepts too. Timestamps must have the shape PostgreSQL's JSON
output gives them (:data:`TIMESTAMP_PATTERN`), so words such as ``now`` or
``today``, dates without a time or times without an offset are refused rather
than read in some session's time zone; within that shape PostgreSQL's own
input function decides.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, case, cast, func, literal, literal_column, select, true
from sqlalchemy.dialects.postgresql import aggregate_order_by

from chatdb.models import USER_MESSAGE_MAX_LENGTH
from chatdb.repositories.statements import CONVERSATION_FIELDS, MESSAGE_FIELDS

if TYPE_CHECKING:
    from chatdb.filters import ConversationFilter

JSON_NULL_FLAG = "metadata_is_json_null"

# What PostgreSQL's JSON output writes for a timestamptz (any offset, a ``Z``, or the infinities).
TIMESTAMP_PATTERN = (
    r"^([0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?"
    r"([+-][0-9]{2}(:[0-9]{2}){0,2}|Z)( BC)?|-?infinity)$"
)


def line_select(c: Any) -> Any:
    """``(id, line, message count)`` for each row of ``c`` (a conversations-shaped subquery), by id."""

    from chatdb.jobs.queries import messages

    m = messages.alias("m")
    # row_to_json over explicit columns: the keys are the column names, in this order.
    r = select(*(m.c[f] for f in MESSAGE_FIELDS)).where(m.c.conversation_id == c.c.id).correlate(c).subquery("r")
    flagged = (
        select(func.row_to_json(literal_column("f")))
        .select_from(
            select(
                *(r.c[f] for f in MESSAGE_FIELDS if f != "created_at"),
                true().label(JSON_NULL_FLAG),
                r.c.created_at,
            )
            .correlate(r)
            .subquery("f")
        )
        .scalar_subquery()
    )
    message_json = case(
        (func.jsonb_typeof(r.c["metadata"]) == literal("null"), flagged),
        else_=func.row_to_json(literal_column("r")),
    )
    nested = (
        # Aggregating json (not the record itself) keeps json_agg from putting newlines between items.
        select(func.json_agg(aggregate_order_by(message_json, r.c.created_at, r.c.id)))
        .select_from(r)
        .correlate(c)
        .scalar_subquery()
    )
    x = select(
        *(c.c[f] for f in CONVERSATION_FIELDS),
        func.coalesce(nested, literal_column("'[]'::json")).label("messages"),
    ).subquery("x")
    # Counting through the index is cheaper than measuring the JSON array again.
    count = select(func.count()).where(m.c.conversation_id == x.c.id).correlate(x).scalar_subquery()
    return select(x.c.id, cast(func.row_to_json(literal_column("x")), Text), count).order_by(x.c.id)


def line_digests(ids_param: Any) -> Any:
    """``(id, sha256 of the line's UTF-8 bytes)`` for the conversations ``id = any(ids_param)``."""

    from chatdb.jobs.queries import conversations

    c = select(conversations).where(conversations.c.id == ids_param).subquery("c")
    lines = line_select(c).subquery("lines")
    line = list(lines.c)[1]
    return select(lines.c.id, func.encode(func.sha256(func.convert_to(line, "UTF8")), "hex"))


# The chain from line text to typed rows, shared by the check and the insert. Each stage is
# MATERIALIZED so that no conversion runs on a line an earlier stage found malformed (the
# planner may otherwise evaluate a cast before the check that guards it).
#   :numbers bigint[], :lines text    - the batch: its line numbers, and its lines joined by
#                                       newlines (no line holds one; one text is far cheaper to
#                                       send than a text[] of escaped elements)
#   :timestamp text                   - TIMESTAMP_PATTERN
_STAGES = """
line AS MATERIALIZED (
    SELECT l.n, CAST(l.t AS jsonb) AS j
    FROM unnest(CAST(:numbers AS bigint[]), string_to_array(CAST(:lines AS text), chr(10))) AS l(n, t)
),
conversation_shape AS MATERIALIZED (
    SELECT n, j, CASE
        WHEN jsonb_typeof(j) <> 'object'
            THEN 'not a JSON object (import reads jsonl: one conversation per line)'
        WHEN NOT j ?& ARRAY['id', 'user_id', 'status', 'created_at', 'updated_at', 'messages']
            THEN 'conversation lacks ' || (
                SELECT string_agg(f, ', ' ORDER BY o)
                FROM unnest(ARRAY['id', 'user_id', 'status', 'created_at', 'updated_at', 'messages'])
                    WITH ORDINALITY AS e(f, o)
                WHERE NOT j ? f)
        WHEN EXISTS (SELECT FROM jsonb_object_keys(j) AS k
                     WHERE k <> ALL (ARRAY['id', 'user_id', 'status', 'created_at', 'updated_at', 'messages']))
            THEN 'conversation has unknown fields ' || (
                SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(j) AS k
                WHERE k <> ALL (ARRAY['id', 'user_id', 'status', 'created_at', 'updated_at', 'messages']))
        WHEN jsonb_typeof(j -> 'messages') <> 'array' THEN 'messages is not a list'
        WHEN EXISTS (SELECT FROM unnest(ARRAY['id', 'user_id', 'status', 'created_at', 'updated_at']) AS f
                     WHERE jsonb_typeof(j -> f) <> 'string')
            THEN (SELECT string_agg(f || ' is not text (a JSON ' || jsonb_typeof(j -> f) || ')', '; ')
                  FROM unnest(ARRAY['id', 'user_id', 'status', 'created_at', 'updated_at']) AS f
                  WHERE jsonb_typeof(j -> f) <> 'string')
        WHEN char_length(j ->> 'user_id') > 255 THEN 'user_id is longer than 255 characters'
        WHEN NOT (j ->> 'status' IN ('active', 'archived'))
            THEN 'status ' || quote_literal(j ->> 'status') || ' is not active or archived'
        WHEN NOT (j ->> 'created_at' ~ :timestamp)
            THEN 'created_at ' || quote_literal(j ->> 'created_at') || ' is not a timestamp as chatdb export writes it'
        WHEN NOT (j ->> 'updated_at' ~ :timestamp)
            THEN 'updated_at ' || quote_literal(j ->> 'updated_at') || ' is not a timestamp as chatdb export writes it'
    END AS problem
    FROM line
),
conversation_row AS MATERIALIZED (
    SELECT n, j, CAST(j ->> 'id' AS uuid) AS id, j ->> 'user_id' AS user_id, j ->> 'status' AS status,
           CAST(j ->> 'created_at' AS timestamptz) AS created_at,
           CAST(j ->> 'updated_at' AS timestamptz) AS updated_at
    FROM conversation_shape WHERE problem IS NULL
),
message_shape AS MATERIALIZED (
    SELECT c.n, e.k, e.m, c.id AS line_conversation_id, CASE
        WHEN jsonb_typeof(e.m) <> 'object' THEN 'message ' || e.k || ' is not an object'
        WHEN NOT e.m ?& ARRAY['id', 'conversation_id', 'user_id', 'role', 'content', 'metadata', 'created_at']
            THEN 'message ' || e.k || ' lacks ' || (
                SELECT string_agg(f, ', ' ORDER BY o)
                FROM unnest(ARRAY['id', 'conversation_id', 'user_id', 'role', 'content', 'metadata', 'created_at'])
                    WITH ORDINALITY AS x(f, o)
                WHERE NOT e.m ? f)
        WHEN EXISTS (SELECT FROM jsonb_object_keys(e.m) AS f
                     WHERE f <> ALL (ARRAY['id', 'conversation_id', 'user_id', 'role', 'content', 'metadata',
                                           'created_at', 'metadata_is_json_null']))
            THEN 'message ' || e.k || ' has unknown fields ' || (
                SELECT string_agg(f, ', ' ORDER BY f) FROM jsonb_object_keys(e.m) AS f
                WHERE f <> ALL (ARRAY['id', 'conversation_id', 'user_id', 'role', 'content', 'metadata',
                                      'created_at', 'metadata_is_json_null']))
        WHEN EXISTS (SELECT FROM unnest(ARRAY['id', 'conversation_id', 'user_id', 'role', 'content', 'created_at']) AS f
                     WHERE jsonb_typeof(e.m -> f) <> 'string')
            THEN (SELECT string_agg('message ' || e.k || ' ' || f || ' is not text (a JSON '
                                    || jsonb_typeof(e.m -> f) || ')', '; ')
                  FROM unnest(ARRAY['id', 'conversation_id', 'user_id', 'role', 'content', 'created_at']) AS f
                  WHERE jsonb_typeof(e.m -> f) <> 'string')
        WHEN e.m ? 'metadata_is_json_null'
             AND (e.m -> 'metadata_is_json_null' <> 'true' OR e.m -> 'metadata' <> 'null')
            THEN 'message ' || e.k || ' metadata_is_json_null must be true, with metadata null'
        WHEN char_length(e.m ->> 'user_id') > 255 THEN 'message ' || e.k || ' user_id is longer than 255 characters'
        WHEN NOT (e.m ->> 'role' IN ('user', 'assistant'))
            THEN 'message ' || e.k || ' role ' || quote_literal(e.m ->> 'role') || ' is not user or assistant'
        WHEN NOT (e.m ->> 'role' <> 'user' OR char_length(e.m ->> 'content') <= :user_message_max_length)
            THEN 'message ' || e.k || ' is a user message longer than ' || :user_message_max_length || ' characters'
        WHEN NOT (e.m ->> 'created_at' ~ :timestamp)
            THEN 'message ' || e.k || ' created_at ' || quote_literal(e.m ->> 'created_at')
                 || ' is not a timestamp as chatdb export writes it'
    END AS problem
    FROM conversation_row AS c, jsonb_array_elements(c.j -> 'messages') WITH ORDINALITY AS e(m, k)
),
message_row AS MATERIALIZED (
    SELECT n, k, line_conversation_id, CAST(m ->> 'id' AS uuid) AS id,
           CAST(m ->> 'conversation_id' AS uuid) AS conversation_id, m ->> 'user_id' AS user_id,
           m ->> 'role' AS role, m ->> 'content' AS content,
           CASE WHEN m ? 'metadata_is_json_null' THEN m -> 'metadata' ELSE NULLIF(m -> 'metadata', 'null') END
               AS metadata,
           CAST(m ->> 'created_at' AS timestamptz) AS created_at
    FROM message_shape WHERE problem IS NULL
)
"""

# One row per problem: (line, problem); then one row per line with no problem found:
# (line, NULL, messages, existing identical conversation 0/1, existing identical messages).
# :against_database false (prune verifying its own export) leaves out the users, the rows
# already in the database and the ids seen before (the table ``pg_temp.chatdb_import_seen``,
# which must exist when it is true).
CHECK_LINES = (
    "WITH"
    + _STAGES
    + """,
seen AS (  -- runs once, whether read or not; this statement's reads do not see its rows
    INSERT INTO pg_temp.chatdb_import_seen (id, line)
    SELECT id, n FROM conversation_row WHERE :against_database
    UNION ALL SELECT id, n FROM message_row WHERE :against_database
    ON CONFLICT (id) DO NOTHING
),
problem AS (
    SELECT n, 1 AS o, problem AS text FROM conversation_shape WHERE problem IS NOT NULL
    UNION ALL SELECT n, 2, problem FROM message_shape WHERE problem IS NOT NULL
    UNION ALL SELECT n, 3, 'message ' || k || ' belongs to conversation ' || conversation_id
                           || ', not to this line''s ' || line_conversation_id
        FROM message_row WHERE conversation_id <> line_conversation_id
    UNION ALL SELECT r.n, 4, 'user ' || quote_literal(r.user_id) || ' does not exist (restore the user first)'
        FROM (SELECT n, user_id FROM conversation_row UNION SELECT n, user_id FROM message_row) AS r
        WHERE :against_database AND NOT EXISTS (SELECT FROM users AS u WHERE u.id = r.user_id)
    UNION ALL SELECT a.n, 5, 'conversation ' || a.id || ' appears again (also on line ' || min(b.n) || ')'
        FROM conversation_row AS a JOIN conversation_row AS b ON a.id = b.id AND b.n < a.n
        GROUP BY a.n, a.id
    UNION ALL SELECT a.n, 5, 'message ' || a.k || ' id ' || a.id || ' appears again (also on line '
                             || min(b.n) || ')'
        FROM message_row AS a JOIN message_row AS b ON a.id = b.id AND (b.n, b.k) < (a.n, a.k)
        GROUP BY a.n, a.k, a.id
    UNION ALL SELECT r.n, 5, 'conversation ' || r.id || ' appears again (also on line ' || s.line || ')'
        FROM conversation_row AS r JOIN pg_temp.chatdb_import_seen AS s ON s.id = r.id
        WHERE :against_database
    UNION ALL SELECT r.n, 5, 'message ' || r.k || ' id ' || r.id || ' appears again (also on line ' || s.line || ')'
        FROM message_row AS r JOIN pg_temp.chatdb_import_seen AS s ON s.id = r.id
        WHERE :against_database
    UNION ALL SELECT r.n, 6, 'conversation ' || r.id || ' already exists with a different '
                             || concat_ws(', ',
                                    CASE WHEN c.user_id IS DISTINCT FROM r.user_id THEN 'user_id' END,
                                    CASE WHEN c.status IS DISTINCT FROM r.status THEN 'status' END,
                                    CASE WHEN c.created_at IS DISTINCT FROM r.created_at THEN 'created_at' END,
                                    CASE WHEN c.updated_at IS DISTINCT FROM r.updated_at THEN 'updated_at' END)
        FROM conversation_row AS r JOIN conversations AS c ON c.id = r.id
        WHERE :against_database
          AND (c.user_id, c.status, c.created_at, c.updated_at)
              IS DISTINCT FROM (r.user_id, r.status, r.created_at, r.updated_at)
    UNION ALL SELECT r.n, 7, 'message ' || r.k || ' id ' || r.id || ' already belongs to conversation '
                             || m.conversation_id
        FROM message_row AS r JOIN messages AS m ON m.id = r.id
        WHERE :against_database AND m.conversation_id <> r.conversation_id
    UNION ALL SELECT r.n, 7, 'message ' || r.k || ' id ' || r.id || ' already exists with a different '
                             || concat_ws(', ',
                                    CASE WHEN m.user_id IS DISTINCT FROM r.user_id THEN 'user_id' END,
                                    CASE WHEN m.role IS DISTINCT FROM r.role THEN 'role' END,
                                    CASE WHEN m.content IS DISTINCT FROM r.content THEN 'content' END,
                                    CASE WHEN m.metadata::text IS DISTINCT FROM r.metadata::text THEN 'metadata' END,
                                    CASE WHEN m.created_at IS DISTINCT FROM r.created_at THEN 'created_at' END)
        FROM message_row AS r JOIN messages AS m ON m.id = r.id
        WHERE :against_database AND m.conversation_id = r.conversation_id
          AND (m.user_id, m.role, m.content, m.metadata::text, m.created_at)
              IS DISTINCT FROM (r.user_id, r.role, r.content, r.metadata::text, r.created_at)
    UNION ALL SELECT r.n, 8, 'conversation ' || r.id || ' already exists with '
                             || count(*) || ' messages that this line does not have'
        FROM conversation_row AS r JOIN messages AS m ON m.conversation_id = r.id
        LEFT JOIN message_row AS f ON f.n = r.n AND f.id = m.id
        WHERE :against_database AND f.id IS NULL
        GROUP BY r.n, r.id
),
per_line AS (
    SELECT m.n, count(*) AS messages, count(e.id) AS existing_messages
    FROM message_row AS m LEFT JOIN messages AS e ON :against_database AND e.id = m.id
    GROUP BY m.n
)
SELECT n, text, NULL, NULL, NULL FROM (
    SELECT DISTINCT ON (n) n, text FROM problem ORDER BY n, o, text
) AS first_problem
UNION ALL
SELECT r.n, NULL, coalesce(p.messages, 0), CASE WHEN c.id IS NULL THEN 0 ELSE 1 END,
       coalesce(p.existing_messages, 0)
FROM conversation_row AS r
LEFT JOIN per_line AS p ON p.n = r.n
LEFT JOIN conversations AS c ON :against_database AND c.id = r.id
WHERE r.n NOT IN (SELECT n FROM problem)
ORDER BY 1
"""
)

CREATE_SEEN = "CREATE TEMPORARY TABLE chatdb_import_seen (id uuid PRIMARY KEY, line bigint NOT NULL) ON COMMIT DROP"

# Inserts a batch the check accepted (existing ids are skipped: the check found them identical).
# Returns (conversations inserted, messages inserted).
INSERT_LINES = (
    "WITH"
    + _STAGES
    + """,
new_conversation AS (
    INSERT INTO conversations (id, user_id, status, created_at, updated_at)
    SELECT id, user_id, status, created_at, updated_at FROM conversation_row ORDER BY n
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
),
new_message AS (
    INSERT INTO messages (id, conversation_id, user_id, role, content, metadata, created_at)
    SELECT id, conversation_id, user_id, role, content, metadata, created_at FROM message_row ORDER BY n, k
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_conversation), (SELECT count(*) FROM new_message)
"""
)


def batch_parameters(numbers: list[int], lines: list[str], *, against_database: bool = True) -> dict[str, Any]:
    return {
        "numbers": numbers,
        "lines": "\n".join(lines),
        "timestamp": TIMESTAMP_PATTERN,
        "user_message_max_length": USER_MESSAGE_MAX_LENGTH,
        "against_database": against_database,
    }


def export_batch(format: str, selection: ConversationFilter, after: uuid.UUID | None, limit: int) -> Any:
    """The next keyset batch of the export, one row per conversation: (id, its line(s), its message count)."""
    from chatdb.jobs.queries import conversations, messages

    page = select(conversations).where(*selection.conditions(conversations))
    if after is not None:
        page = page.where(conversations.c.id > after)
    c = page.order_by(conversations.c.id).limit(limit).subquery("c")
    m = messages.alias("m")
    if format == "csv":
        return csv_batch(c, m)
    return line_select(c)


def csv_batch(c: Any, m: Any) -> Any:
    """One row per conversation, as for jsonl: (id, its CSV lines, its number of messages).

    PostgreSQL writes the CSV itself, as it writes the jsonl: values as text
    (timestamps in ISO 8601 as in the jsonl, metadata as JSON), quoted as
    RFC 4180 needs (a value with a comma, quote or line break; metadata
    always). Python then only copies bytes, so csv costs about what jsonl costs.
    """

    def iso(value: Any) -> Any:
        return func.btrim(cast(func.to_json(value), Text), literal('"'))

    def quoted(value: Any) -> Any:
        return func.concat('"', func.replace(value, '"', '""'), '"')

    def free(value: Any) -> Any:
        """Text that may hold a comma, quote or line break: quoted when it does."""
        return case((value.op("~")(literal('[",\r\n]')), quoted(value)), else_=value)

    # Ids, statuses, roles and timestamps never need quotes; JSON metadata always does.
    head = func.concat_ws(
        ",",
        cast(c.c.id, Text),
        free(c.c.user_id),
        cast(c.c.status, Text),
        iso(c.c.created_at),
        iso(c.c.updated_at),
    ).label("head")
    body = func.concat_ws(
        ",",
        cast(m.c.id, Text),
        free(m.c.user_id),
        cast(m.c.role, Text),
        free(m.c.content),
        case((m.c["metadata"].is_(None), literal("")), else_=quoted(cast(m.c["metadata"], Text))),
        iso(m.c.created_at),
    )
    x = select(c.c.id, head).subquery("x")
    # Each conversation's lines come from a subquery on its own messages (through the index), as
    # the jsonl's json_agg does: a join would read the whole messages table for every batch.
    lines = (
        select(
            func.string_agg(
                func.concat(x.c.head, ",", body, "\n"), aggregate_order_by(literal(""), m.c.created_at, m.c.id)
            )
        )
        .where(m.c.conversation_id == x.c.id)
        .correlate(x)
        .scalar_subquery()
    )
    count = select(func.count()).where(m.c.conversation_id == x.c.id).correlate(x).scalar_subquery()
    # A conversation without messages has one row, its six message columns empty.
    alone = func.concat(x.c.head, ",,,,,,\n")
    return select(x.c.id, func.coalesce(lines, alone), count).order_by(x.c.id)
