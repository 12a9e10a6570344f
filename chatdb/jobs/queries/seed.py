"""seed's statements: a plan of every conversation in a temporary table, then whole conversations per batch.

Every row is generated server-side with ``INSERT … SELECT … generate_series``;
the plan (each conversation's id, owner, status, start, message count and
pace) is computed first, and each batch's part of it travels as arrays, so
batches need no shared temporary table and can run on several connections.
"""

PLAN = """
CREATE TEMPORARY TABLE chatdb_seed_plan (
    n integer PRIMARY KEY,
    id uuid NOT NULL,
    user_id varchar(255) NOT NULL,
    status varchar(20) NOT NULL,
    long boolean NOT NULL,
    weight numeric NOT NULL,
    messages integer,
    gap double precision NOT NULL,
    started timestamptz
)
"""

FILL_PLAN = """
INSERT INTO chatdb_seed_plan (n, id, user_id, status, long, weight, gap)
SELECT g, gen_random_uuid(),
       (CAST(:user_ids AS varchar[]))[1 + floor(cardinality(CAST(:user_ids AS varchar[])) * random() ^ 2)::int],
       CASE WHEN random() < :archived THEN 'archived' ELSE 'active' END,
       long,
       1 + floor(1000 * random() ^ 3),
       -- seconds between messages: a chat for normal conversations, days for long ones
       CASE WHEN long THEN 600 + 3000 * random() ELSE 15 + 150 * random() END
FROM generate_series(1, :conversations) AS g,
     LATERAL (SELECT CAST(:long_every AS int) > 0 AND g % greatest(CAST(:long_every AS int), 1) = 0
                     AND g <= CAST(:long_count AS bigint) * CAST(:long_every AS int) AS long) AS l
"""

# Long conversations share LONG_CONVERSATION_SHARE of the messages between them.
LONG_WEIGHTS = """
UPDATE chatdb_seed_plan SET weight = t.normal * :share / (1 - :share) / :long_count
FROM (SELECT sum(weight) AS normal FROM chatdb_seed_plan WHERE NOT long) AS t
WHERE long AND t.normal IS NOT NULL
"""

# Telescoping floors of the cumulative weights: the counts add up to exactly :extra.
COUNTS = """
UPDATE chatdb_seed_plan AS p
SET messages = CAST(:base AS int) + (floor(CAST(:extra AS numeric) * c.cum / c.total) - floor(CAST(:extra AS numeric) * (c.cum - c.weight) / c.total))::int
FROM (SELECT n, weight, sum(weight) OVER (ORDER BY n) AS cum, sum(weight) OVER () AS total
      FROM chatdb_seed_plan) AS c
WHERE p.n = c.n
"""

# Start somewhere in the last two years, early enough for the last message to be in the past.
START = """
UPDATE chatdb_seed_plan
SET started = least(now() - random() * make_interval(days => :days),
                    now() - make_interval(secs => (messages + 1) * gap))
"""

# A batch's conversations, from the plan, as arrays: batches then need no shared
# temporary table and can run on several connections at once.
BATCH_CTE = """
WITH p AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS varchar[]), CAST(:statuses AS varchar[]),
                         CAST(:counts AS int[]), CAST(:gaps AS float8[]), CAST(:starts AS timestamptz[]))
        AS p(id, user_id, status, messages, gap, started)
)
"""

INSERT_CONVERSATIONS = (
    BATCH_CTE
    + """
INSERT INTO conversations (id, user_id, status, created_at, updated_at)
SELECT id, user_id, status, started, started + make_interval(secs => messages * gap) FROM p
"""
)

INSERT_MESSAGES = (
    BATCH_CTE
    + """
INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at)
SELECT p.id, p.user_id,
       CASE WHEN m.is_user THEN 'user' ELSE 'assistant' END,
       CASE WHEN m.is_user
            THEN (CAST(:user_texts AS text[]))[1 + floor(random() * :user_count)::int]
            ELSE (CAST(:assistant_texts AS text[]))[1 + floor(random() * :assistant_count)::int]
       END,
       CASE WHEN m.is_user THEN NULL ELSE jsonb_build_object(
            'model', (CAST(:models AS text[]))[1 + floor(random() * :model_count)::int],
            'prompt_tokens', 200 + k * 40 + floor(random() * 400)::int,
            'completion_tokens', 10 + floor(450 * m.r ^ 2)::int,
            'latency_ms', 300 + floor(4000 * random() ^ 2)::int,
            'finish_reason', 'stop') END,
       p.started + make_interval(secs => (k + 0.9 * random()) * p.gap)
FROM p
CROSS JOIN LATERAL generate_series(0, p.messages - 1) AS k
CROSS JOIN LATERAL (SELECT k % 2 = 0 AS is_user, random() AS r) AS m
"""
)

CONVERSATIONS_EXIST = "SELECT EXISTS (SELECT 1 FROM conversations)"
READ_PLAN = "SELECT id, user_id, status, messages, gap, started FROM chatdb_seed_plan ORDER BY n"
DROP_PLAN = "DROP TABLE chatdb_seed_plan"
ANALYZE = ("ANALYZE conversations", "ANALYZE messages")
SEED_USERS = "SELECT id FROM users WHERE starts_with(id, :prefix) ORDER BY id"
SEEDED_MESSAGES = "SELECT count(*) FROM messages WHERE user_id = ANY(:users)"
# Messages seeded users left in other users' conversations; rows the application holds are skipped.
DELETE_STRAY_MESSAGES = """
DELETE FROM messages WHERE id IN (
    SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.user_id = ANY(:users) AND NOT starts_with(c.user_id, :prefix)
    FOR UPDATE OF m SKIP LOCKED)
"""
VACUUM_MESSAGES = "VACUUM messages"
# Only users with no conversation and no message left: one whose rows the application held
# stays for the next run (deleting it would wait on those rows through the foreign keys).
DELETE_SEED_USERS = """
DELETE FROM users WHERE id = ANY(:users)
    AND NOT EXISTS (SELECT 1 FROM conversations WHERE user_id = users.id)
    AND id NOT IN (SELECT DISTINCT user_id FROM messages WHERE user_id = ANY(:users))
"""
