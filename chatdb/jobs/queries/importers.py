"""The importers' SQL: what exists already, then inserts that skip it, in one transaction."""

# :ids uuid[] - the conversations' derived ids
EXISTING_CONVERSATIONS = """
SELECT id, user_id FROM conversations WHERE id = ANY(CAST(:ids AS uuid[]))
"""

# :ids uuid[] - the messages' derived ids
EXISTING_MESSAGES = """
SELECT id, conversation_id FROM messages WHERE id = ANY(CAST(:ids AS uuid[]))
"""

# :rows jsonb - [{id, user_id, created_at, updated_at}]
INSERT_CONVERSATIONS = """
WITH new AS (
    INSERT INTO conversations (id, user_id, status, created_at, updated_at)
    SELECT r.id, r.user_id, 'active', r.created_at, r.updated_at
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS r(id uuid, user_id text, created_at timestamptz, updated_at timestamptz)
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM new
"""

# :rows jsonb - [{id, conversation_id, user_id, role, content, metadata, created_at}]
# A conversation that gets new messages has its last activity moved up to the newest of them.
INSERT_MESSAGES = """
WITH new AS (
    INSERT INTO messages (id, conversation_id, user_id, role, content, metadata, created_at)
    SELECT r.id, r.conversation_id, r.user_id, r.role, r.content, r.metadata, r.created_at
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS r(id uuid, conversation_id uuid, user_id text, role text, content text, metadata jsonb,
             created_at timestamptz)
    ON CONFLICT (id) DO NOTHING
    RETURNING conversation_id, created_at
),
moved AS (
    UPDATE conversations AS c SET updated_at = n.last
    FROM (SELECT conversation_id, max(created_at) AS last FROM new GROUP BY conversation_id) AS n
    WHERE c.id = n.conversation_id AND c.updated_at < n.last
    RETURNING 1
)
SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM moved)
"""

USER_EXISTS = "SELECT 1 FROM users WHERE id = :u"
