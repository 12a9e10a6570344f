"""seed and bench on the application's own ``users`` table, whatever required columns it has.

Each case is a realistic Phase II ``users`` table with two real users. seed
and bench either work on it (filling every required column, leaving the real
users exactly as they were, and removing their own users afterwards) or
refuse with one line that names the column and why, having written nothing.
"""

from __future__ import annotations

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error

REAL_USERS = "SELECT * FROM users WHERE NOT starts_with(id, 'chatdb-') ORDER BY id"

# The table operators have: a required unique email, created_at with a default.
OPERATORS = """
CREATE TABLE users (
    id varchar(255) PRIMARY KEY,
    email varchar(320) NOT NULL UNIQUE,
    name varchar(255),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users (id, email, name) VALUES ('u1', 'ada@example.com', 'Ada'), ('u2', 'bob@example.com', NULL);
"""

# CHECKs the generated values satisfy, and a nullable foreign key left empty.
SATISFIABLE_CHECKS = """
CREATE TABLE organizations (id bigint PRIMARY KEY);
INSERT INTO organizations VALUES (7);
CREATE TABLE users (
    id varchar(255) PRIMARY KEY,
    email text NOT NULL CHECK (email LIKE '%_@_%'),
    handle varchar(40) NOT NULL UNIQUE CHECK (length(handle) >= 3),
    organization_id bigint REFERENCES organizations,
    CONSTRAINT users_handle_not_email CHECK (handle <> email)
);
INSERT INTO users VALUES ('u1', 'ada@example.com', 'ada', 7), ('u2', 'bob@example.com', 'bob', NULL);
"""

# Every kind of required column: enum, uuid, unique integer, boolean, timestamps,
# date, json, array, short and unique text, a domain.
MANY_TYPES = """
CREATE TYPE user_role AS ENUM ('member', 'admin');
CREATE DOMAIN short_code AS varchar(12) NOT NULL;
CREATE TABLE users (
    id varchar(255) PRIMARY KEY,
    role user_role NOT NULL,
    external_id uuid NOT NULL UNIQUE,
    account_number integer NOT NULL UNIQUE,
    credits numeric(10, 2) NOT NULL,
    verified boolean NOT NULL,
    signed_up timestamptz NOT NULL UNIQUE,
    last_seen timestamp NOT NULL,
    birthday date NOT NULL,
    opens_at time NOT NULL,
    settings jsonb NOT NULL,
    raw_profile json NOT NULL,
    tags text[] NOT NULL,
    avatar bytea NOT NULL,
    country char(2) NOT NULL,
    login varchar(10) NOT NULL UNIQUE,
    code short_code UNIQUE,
    contact_email varchar(30) NOT NULL UNIQUE,
    serial bigint GENERATED ALWAYS AS IDENTITY
);
INSERT INTO users (id, role, external_id, account_number, credits, verified, signed_up, last_seen, birthday,
                   opens_at, settings, raw_profile, tags, avatar, country, login, code, contact_email)
VALUES ('u1', 'admin', gen_random_uuid(), 1, 5, true, now(), now(), '1990-01-01', '09:00', '{}', '{}',
        '{a}', '\\x00', 'PT', 'ada', 'A1', 'ada@example.com'),
       ('u2', 'member', gen_random_uuid(), 2, 0, false, now() - interval '1 day', now(), '1991-02-02', '09:00',
        '{"x": 1}', '[]', '{}', '\\x01', 'DE', 'bob', 'B2', 'bob@example.com');
"""

# A unique index on an expression, partial: e-mail addresses unique among live users.
PARTIAL_UNIQUE = """
CREATE TABLE users (
    id varchar(255) PRIMARY KEY,
    email varchar(320) NOT NULL,
    deleted_at timestamptz
);
CREATE UNIQUE INDEX users_live_email ON users (lower(email)) WHERE deleted_at IS NULL;
INSERT INTO users VALUES ('u1', 'ada@example.com', NULL), ('u2', 'ada@example.com', now());
"""

# Optional columns a CHECK needs one of: filled when left NULL fails it.
EMAIL_OR_PHONE = """
CREATE TABLE users (
    id varchar(255) PRIMARY KEY,
    email varchar(320) UNIQUE,
    phone varchar(20),
    CONSTRAINT users_reachable CHECK (email IS NOT NULL OR phone IS NOT NULL)
);
INSERT INTO users VALUES ('u1', 'ada@example.com', NULL), ('u2', NULL, '+351912345678');
"""

WORKING = {
    "operators": OPERATORS,
    "checks": SATISFIABLE_CHECKS,
    "types": MANY_TYPES,
    "partial": PARTIAL_UNIQUE,
    "email or phone": EMAIL_OR_PHONE,
}

REFUSED = {
    "check": (
        "CREATE TABLE users (id varchar(255) PRIMARY KEY, plan text NOT NULL CHECK (plan IN ('free', 'pro')));"
        "INSERT INTO users VALUES ('u1', 'pro');",
        ("users.plan", "users_plan_check", "give the column a default"),
    ),
    "foreign key": (
        "CREATE TABLE organizations (id bigint PRIMARY KEY); INSERT INTO organizations VALUES (1);"
        "CREATE TABLE users (id varchar(255) PRIMARY KEY, email text NOT NULL,"
        " organization_id bigint NOT NULL REFERENCES organizations);"
        "INSERT INTO users VALUES ('u1', 'ada@example.com', 1);",
        ("users.organization_id", "references organizations"),
    ),
    "domain check": (
        r"CREATE DOMAIN phone_number AS text CHECK (VALUE ~ '^\+[0-9]{6,15}$');"
        "CREATE TABLE users (id varchar(255) PRIMARY KEY, phone phone_number NOT NULL);"
        "INSERT INTO users VALUES ('u1', '+351912345678');",
        ("users.phone", "phone_number_check"),
    ),
    "id check": (
        "CREATE TABLE users (id varchar(255) PRIMARY KEY CHECK (id LIKE 'usr\\_%'));"
        "INSERT INTO users VALUES ('usr_1');",
        ("users.id", "users_id_check"),
    ),
    "check on optional columns": (
        "CREATE TABLE users (id varchar(255) PRIMARY KEY, email text, phone text,"
        " CONSTRAINT users_one_contact CHECK (num_nonnulls(email, phone) = 1));"
        "INSERT INTO users VALUES ('u1', 'ada@example.com', NULL);",
        ("users.email, users.phone", "users_one_contact", "generated values"),
    ),
    "unknown type": (
        "CREATE TABLE users (id varchar(255) PRIMARY KEY, home point NOT NULL);"
        "INSERT INTO users VALUES ('u1', '(1,2)');",
        ("users.home", "point", "no generic value"),
    ),
}


def phase2_database(db: TestDatabase, ddl: str) -> Cli:
    db.sql(ddl)
    cli = Cli(db.url)
    migrated = cli("migrate")
    assert migrated.exit_code == 0, migrated.stderr
    return cli


def demo_users(db: TestDatabase) -> list[tuple]:
    return db.sql("SELECT * FROM users WHERE starts_with(id, 'chatdb-') ORDER BY id")


@pytest.mark.parametrize("ddl", WORKING.values(), ids=WORKING.keys())
def test_seed_and_bench_work_on_a_phase2_users_table(empty_db: TestDatabase, ddl: str) -> None:
    cli = phase2_database(empty_db, ddl)
    real = empty_db.sql(REAL_USERS)

    seeded = cli("seed", "--messages", "60", "--conversations", "6", "--users", "3", "--json")
    assert seeded.exit_code == 0, seeded.stderr
    assert seeded.json()["users"] == 3
    created = demo_users(empty_db)
    assert [row[0] for row in created] == ["chatdb-seed-000001", "chatdb-seed-000002", "chatdb-seed-000003"]
    assert empty_db.scalar("SELECT count(DISTINCT user_id) FROM conversations") <= 3
    assert empty_db.scalar("SELECT count(*) FROM messages") == 60
    assert empty_db.sql(REAL_USERS) == real

    bench = cli("bench", "--duration", "1s", "--clients", "1", "--workers", "1", "--sample", "3", "--json")
    assert bench.exit_code == 0, bench.stderr
    assert bench.json()["cleanup"]["users"] == 1
    assert demo_users(empty_db) == created
    assert empty_db.sql(REAL_USERS) == real

    removed = cli("seed", "--remove", "--yes", "--json")
    assert removed.exit_code == 0, removed.stderr
    assert removed.json()["users"] == 3
    assert demo_users(empty_db) == []
    assert empty_db.sql(REAL_USERS) == real
    assert empty_db.scalar("SELECT count(*) FROM conversations") == 0


def test_required_columns_get_values_of_their_type(empty_db: TestDatabase) -> None:
    """The generated values: unique where an index asks, an e-mail address where the name says so."""
    cli = phase2_database(empty_db, MANY_TYPES)
    assert cli("seed", "--messages", "20", "--conversations", "2", "--users", "2").exit_code == 0
    rows = empty_db.sql(
        "SELECT role::text, account_number, verified, country, length(login), contact_email, settings,"
        " tags, code FROM users WHERE starts_with(id, 'chatdb-seed-') ORDER BY id"
    )
    assert [row[0] for row in rows] == ["member", "member"]  # the enum's first label
    assert [row[1] for row in rows] == [3, 4]  # after the largest account number
    assert all(row[2] is False and row[6] == {} and row[7] == [] for row in rows)
    assert all(len(row[3]) == 2 and row[4] == 10 for row in rows)  # shortened to fit, still unique
    assert all(row[5].endswith("@example.invalid") and len(row[5]) <= 30 for row in rows)
    assert len({row[8] for row in rows}) == 2


@pytest.mark.parametrize(("ddl", "fragments"), REFUSED.values(), ids=REFUSED.keys())
def test_seed_and_bench_refuse_a_column_no_generated_value_satisfies(
    empty_db: TestDatabase, ddl: str, fragments: tuple[str, ...]
) -> None:
    cli = phase2_database(empty_db, ddl)
    before = empty_db.sql("SELECT * FROM users ORDER BY id")

    assert_one_line_error(cli("seed", "--messages", "10"), 1, "cannot create demo users", *fragments)
    bench = cli("bench", "--duration", "1s", "--clients", "1", "--json")  # --json: no progress lines
    assert_one_line_error(bench, 1, "cannot create demo users", *fragments)

    assert empty_db.sql("SELECT * FROM users ORDER BY id") == before
    assert empty_db.scalar("SELECT count(*) FROM conversations") == 0
