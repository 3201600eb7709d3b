#!/usr/bin/env python3
"""Checks and database chores shared by bin/test and bin/run.

    devtool.py check            exit 2 with a clear message if Odoo, PostgreSQL or Mosquitto is missing
    devtool.py dropdb NAME...   drop databases (and their filestores) if they exist
    devtool.py dbexists NAME    exit 0 if the database exists and has the IoT modules installed
"""

import configparser
import os
import shutil
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "odoo.conf"))
    options = parser["options"]
    return {
        "host": os.environ.get("PGHOST", options.get("db_host", "127.0.0.1")),
        "port": int(os.environ.get("PGPORT", options.get("db_port", "5432"))),
        "user": os.environ.get("PGUSER", options.get("db_user", "root")),
        "data_dir": os.path.join(ROOT, options.get("data_dir", ".odoo-data")),
    }


def _connect(dbname="postgres"):
    import psycopg2

    config = _config()
    return psycopg2.connect(
        host=config["host"], port=config["port"], user=config["user"], dbname=dbname,
        connect_timeout=5,
    )


def check():
    problems = []
    try:
        import odoo.release

        if odoo.release.version_info[0] != 18:
            problems.append("Odoo 18 is required, found %s" % odoo.release.version)
    except ImportError as error:
        problems.append(
            "Odoo is not importable by %s (%s). Install Odoo 18.0 so that "
            "'python3 -c \"import odoo\"' works (see README, Prerequisites)." % (sys.executable, error)
        )
    config = _config()
    try:
        _connect().close()
    except ImportError:
        problems.append("psycopg2 is missing (it comes with Odoo's requirements).")
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        problems.append(
            "PostgreSQL is not reachable at %s:%s as role %r: %s"
            % (config["host"], config["port"], config["user"], str(error).strip())
        )
    broker = (os.environ.get("IOT_MQTT_HOST", "127.0.0.1"), int(os.environ.get("IOT_MQTT_PORT", "1883")))
    try:
        socket.create_connection(broker, timeout=5).close()
    except OSError as error:
        problems.append("Mosquitto (MQTT broker) is not reachable at %s:%s: %s" % (*broker, error))
    for module in ("paho.mqtt.client", "requests", "xlsxwriter", "pytest_odoo"):
        try:
            __import__(module)
        except ImportError:
            problems.append("Python package for %r is missing: pip install -r requirements.txt" % module)
    if problems:
        for problem in problems:
            print("ERROR: " + problem, file=sys.stderr)
        return 2
    return 0


def dropdb(names):
    connection = _connect()
    connection.autocommit = True
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            cursor.execute('DROP DATABASE IF EXISTS "%s"' % name.replace('"', ""))
            shutil.rmtree(os.path.join(_config()["data_dir"], "filestore", name), ignore_errors=True)
    connection.close()
    return 0


def dbexists(name):
    try:
        connection = _connect(name)
    except Exception:  # noqa: BLE001 - a missing database fails to connect
        return 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM ir_module_module WHERE name LIKE 'iot\\_%%' AND state = 'installed'"
        )
        installed = cursor.fetchone()[0]
    connection.close()
    return 0 if installed >= 4 else 1


if __name__ == "__main__":
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "check":
        sys.exit(check())
    if command == "dropdb":
        sys.exit(dropdb(args))
    if command == "dbexists" and len(args) == 1:
        sys.exit(dbexists(args[0]))
    print(__doc__, file=sys.stderr)
    sys.exit(64)
