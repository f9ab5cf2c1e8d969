"""Debian's psycopg2 against the SQL front end, as a Python application uses it.

python3 psycopg2_client.py params DSN        the reported settings (ParameterStatus), as JSON
python3 psycopg2_client.py txn DSN_A DSN_B   a transaction through A, read back through B
python3 psycopg2_client.py cancel DSN        a query cancelled from another thread (PQcancel)
python3 psycopg2_client.py set DSN           SET TimeZone: the reported value follows
"""
import json
import sys
import threading
import time

import psycopg2

REPORTED = [
    "application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
    "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding",
    "server_version", "session_authorization", "standard_conforming_strings", "TimeZone",
]


def params(dsn):
    conn = psycopg2.connect(dsn, application_name="synod-test")
    out = {name: conn.get_parameter_status(name) for name in REPORTED}
    out["encoding"] = conn.encoding
    out["server_version_number"] = conn.server_version
    conn.close()
    return out


def txn(dsn_a, dsn_b):
    a = psycopg2.connect(dsn_a)
    with a:  # psycopg2 opens a transaction at the first statement; the block commits it
        with a.cursor() as cur:
            cur.execute("INSERT INTO notes VALUES (%s, %s) RETURNING id", (500, "from python"))
            returned = cur.fetchone()[0]
            cur.execute("UPDATE notes SET body = body || %s WHERE id = %s", ("!", 500))
    try:
        with a:
            with a.cursor() as cur:
                cur.execute("INSERT INTO notes VALUES (%s, %s)", (501, "rolled back"))
                raise RuntimeError("roll back")
    except RuntimeError:
        pass
    a.close()
    b = psycopg2.connect(dsn_b)
    deadline = time.time() + 15
    rows = []
    while time.time() < deadline:
        with b.cursor() as cur:
            cur.execute("SELECT id, body FROM notes WHERE id >= 500 ORDER BY id")
            rows = cur.fetchall()
        b.rollback()
        if rows:
            break
        time.sleep(0.05)
    b.close()
    return {"returned": returned, "rows": rows}


def cancel(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    timer = threading.Timer(0.5, conn.cancel)
    timer.start()
    started = time.time()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(20)")
        outcome = {"cancelled": False}
    except psycopg2.Error as error:
        outcome = {"cancelled": True, "code": error.pgcode}
    outcome["seconds"] = round(time.time() - started, 1)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        outcome["after"] = cur.fetchone()[0]
    conn.close()
    return outcome


def set_timezone(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    before = conn.get_parameter_status("TimeZone")
    with conn.cursor() as cur:
        cur.execute("SET TimeZone TO 'Asia/Tokyo'")
    after = conn.get_parameter_status("TimeZone")
    conn.close()
    return {"before": before, "after": after}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "params":
        result = params(sys.argv[2])
    elif mode == "txn":
        result = txn(sys.argv[2], sys.argv[3])
    elif mode == "cancel":
        result = cancel(sys.argv[2])
    elif mode == "set":
        result = set_timezone(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))
