"""What bench/rows.py's rows need before they run, and the table put back after writes.

A DRF token for the writes, a range of ids seeded for the deletes to use up, the ETags
of the hot items as the server gives them, and how many pages a list query has.
"""

import http.client
import json
import secrets
import urllib.request
from pathlib import Path

import psycopg2

from bench.harness import DATABASE_URL, ITEMS

TOKEN_SQL = """
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
VALUES ('!', false, 'bench-writer', '', '', '', false, true, now())
ON CONFLICT (username) DO UPDATE SET is_active = true
RETURNING id;
"""
RESERVE_SQL = """
WITH reserved AS (
    INSERT INTO items_item (name, description, price, quantity, version, created_at, updated_at)
    SELECT 'Reserved ' || n, 'Reserved for the delete row', 1.00, 1, 1, now(), now()
    FROM generate_series(1, %s) AS n
    RETURNING id
)
SELECT min(id), max(id) FROM reserved;
"""


def _execute(sql: str, parameters: list) -> tuple | None:
    connection = psycopg2.connect(DATABASE_URL)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, parameters)
            return cursor.fetchone() if cursor.description else None
    finally:
        connection.close()


def bench_token() -> str:
    """A new DRF token for the bench's own user (created on first use)."""
    (user_id,) = _execute(TOKEN_SQL, [])
    key = secrets.token_hex(20)
    _execute(
        "INSERT INTO authtoken_token (key, user_id, created) VALUES (%s, %s, now()) "
        "ON CONFLICT (user_id) DO UPDATE SET key = EXCLUDED.key",
        [key, user_id],
    )
    return key


def reserve_ids(count: int) -> range:
    """Insert `count` items for deletes to take, one statement: their ids are consecutive."""
    first, last = _execute(RESERVE_SQL, [count])
    return range(first, last + 1)


def restore_items() -> None:
    """Delete every item past the seeded ones: what creates added and deletes left.

    Their cache entries stay, under ids no row reads again.
    """
    _execute("DELETE FROM items_item WHERE id > %s", [ITEMS])


def list_pages(url: str, query: str, page_size: int, wanted: int) -> int:
    """How many of the first `wanted` pages of the list query exist (at least 1)."""
    with urllib.request.urlopen(f"{url}/api/items/?{query}", timeout=10) as answer:
        count = json.load(answer)["count"]
    return max(1, min(wanted, count // page_size))


def write_etags(port: int, ids: range, path: Path) -> None:
    """One "<id> <ETag>" line per item, as the server answers now (bench/conditional.lua)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    lines = []
    try:
        for item_id in ids:
            connection.request("GET", f"/api/items/{item_id}/")
            answer = connection.getresponse()
            answer.read()
            lines.append(f"{item_id} {answer.headers['ETag']}\n")
    finally:
        connection.close()
    path.write_text("".join(lines))
