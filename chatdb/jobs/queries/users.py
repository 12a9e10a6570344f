"""The application's users table as the catalog describes it, for creating demo users (seed's, bench's)."""

# Every column of users, each resolved through its domains to a base type. A
# column is required when it (or a domain it uses) is NOT NULL and neither it
# nor a domain gives a default; identity and generated columns fill themselves.
USERS_COLUMNS = """
WITH RECURSIVE resolved AS (
    SELECT a.attnum, a.atttypid AS typid, a.atttypmod AS typmod, a.attnotnull AS notnull,
           a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' AS filled,
           ARRAY[]::oid[] AS domains
    FROM pg_attribute a
    WHERE a.attrelid = to_regclass('users') AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
    SELECT r.attnum, t.typbasetype, CASE WHEN r.typmod >= 0 THEN r.typmod ELSE t.typtypmod END,
           r.notnull OR t.typnotnull, r.filled OR t.typdefaultbin IS NOT NULL, r.domains || t.oid
    FROM resolved r JOIN pg_type t ON t.oid = r.typid
    WHERE t.typtype = 'd'
)
SELECT a.attname, r.notnull AND NOT r.filled AS required, t.typname, t.typtype, t.typcategory,
       r.typmod, format_type(a.atttypid, a.atttypmod) AS declared, r.domains,
       (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder LIMIT 1),
       -- a key column, or one an expression or predicate uses (recorded in pg_depend)
       EXISTS (SELECT 1 FROM pg_index i
               WHERE i.indrelid = a.attrelid AND i.indisunique
                 AND (a.attnum = ANY(i.indkey) OR EXISTS (
                      SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                         AND d.objid = i.indexrelid AND d.refobjid = a.attrelid
                         AND d.refobjsubid = a.attnum))) AS in_unique_index,
       (SELECT string_agg(DISTINCT f.confrelid::regclass::text, ', ') FROM pg_constraint f
         WHERE f.conrelid = a.attrelid AND f.contype = 'f' AND a.attnum = ANY(f.conkey)) AS references
FROM resolved r
JOIN pg_attribute a ON a.attrelid = to_regclass('users') AND a.attnum = r.attnum
JOIN pg_type t ON t.oid = r.typid
WHERE t.typtype <> 'd'
ORDER BY a.attnum
"""

# CHECK constraints that can reject a value: the table's (with their columns)
# and those of the domains its columns use.
USERS_CHECKS = """
SELECT c.conname, pg_get_constraintdef(c.oid),
       ARRAY(SELECT a.attname FROM pg_attribute a
             WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) ORDER BY a.attnum)::text[],
       c.contypid
FROM pg_constraint c
WHERE c.contype = 'c' AND (c.conrelid = to_regclass('users')
       OR c.contypid IN (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = to_regclass('users')))
"""


USERS_UNIQUE_INDEXES = (
    "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass('users') AND i.indisunique"
)

EXISTING_USERS = "SELECT id FROM users WHERE id = ANY(CAST(:ids AS varchar[]))"
