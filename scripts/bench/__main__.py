"""`make bench`: create a PostgreSQL database of its own, fill it, measure, load test,
write BENCHMARKS.md, drop the database.

    python -m scripts.bench --scale full            # the issue-10 dataset
    python -m scripts.bench --scale small --skip-load
    python -m scripts.bench --scale full --keep     # keep qipbench_full afterwards
    python -m scripts.bench --scale full --reuse    # measure a kept database again
    python -m scripts.bench --scale full --generate-only
                                                    # build and keep qipbench_full, measure nothing
    python -m scripts.bench --scale full --live-plans 10000 --only-sweeps
                                                    # issue 7: sweeps over 10,000 live plans
    python -m scripts.bench --scale small --output /tmp/b.md
                                                    # the report headed by this run, elsewhere
    python -m scripts.bench.report                  # the report again from saved results

Exits with 1 (after saving the results and writing the report) if any load-test user
could not sign in.

Needs PostgreSQL (``BENCH_PG``, default postgres://postgres@127.0.0.1:5432) and, for the
load test, Redis (``BENCH_REDIS``, default redis://127.0.0.1:6379/12: database 12, so
the worker never takes another process's tasks).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def _pg_admin_url() -> str:
    return os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{_pg_admin_url()}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _db_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(f"{_pg_admin_url()}/postgres", autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


def bench_env(db_name: str, work: Path, *, redis_url: str = "") -> dict[str, str]:
    """The environment of the compose file's app services, pointed at the bench
    database (DEBUG off, SSL redirect off, a random secret key)."""
    env = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SITE_URL": "http://127.0.0.1:8000",
        "DATABASE_URL": f"{_pg_admin_url()}/{db_name}",
        "EMAIL_URL": "dummymail://",
        "MEDIA_ROOT": str(work / "media"),
        "STATIC_ROOT": str(work / "static"),
        "SECURE_SSL_REDIRECT": "false",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu or platform.processor()}, {os.cpu_count()} cores, {mem}, {system}"


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return f"{head}{' + uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def results_name(scale: str, live_plans: int | None = None, only_sweeps: bool = False) -> str:
    """The results file of a run: ``<scale>.json`` for the default dataset and the full
    set of measurements; a file of its own for a dataset with another number of live
    plans, or for a sweeps-only run, so neither replaces the main results."""
    if live_plans is not None:
        return f"{scale}-live{live_plans}.json"
    if only_sweeps:
        return f"{scale}-sweeps.json"
    return f"{scale}.json"


def main(argv: list[str] | None = None) -> int:
    from scripts.bench import config

    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scale", choices=list(config.SCALES), default="full")
    parser.add_argument("--db-name", help="default qipbench_<scale>")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--reuse", action="store_true", help="measure an existing (kept) database")
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="build the dataset and keep the database; measure nothing (a later --reuse "
        "run measures it, with the code of that run, on a dataset no sweep has touched yet)",
    )
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--skip-load", action="store_true", help="no load test")
    parser.add_argument(
        "--only-load",
        action="store_true",
        help="only the load test (on a new or --reuse'd database), merged into the saved results",
    )
    parser.add_argument(
        "--live-plans",
        type=int,
        metavar="N",
        help="make exactly N of the scale's plans live (the other statuses share the rest in "
        "their usual proportions); results go to results/<scale>-live<N>.json",
    )
    parser.add_argument(
        "--only-sweeps",
        action="store_true",
        help="measure only the nightly sweeps (first run and repeat), no pages, engine, "
        "import, PDF or load test; results go to a file of their own "
        "(results/<scale>-live<N>.json, or results/<scale>-sweeps.json)",
    )
    parser.add_argument("--load-seconds", type=int, default=60)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")
    )
    parser.add_argument(
        "--output",
        help="write the report here, headed by this run's scale (default: BENCHMARKS.md, "
        "headed by the largest scale measured)",
    )
    args = parser.parse_args(argv)

    scale = config.scale(args.scale)
    if args.live_plans is not None and not 0 <= args.live_plans <= scale.plans:
        parser.error(f"--live-plans must be between 0 and {scale.plans} at scale {scale.name}")
    if args.only_sweeps and args.only_load:
        parser.error("--only-sweeps and --only-load exclude each other")
    results_file = RESULTS / results_name(scale.name, args.live_plans, args.only_sweeps)
    db_name = args.db_name or f"qipbench_{scale.name}"
    if not db_name.startswith("qipbench_"):
        parser.error("the database name must start with qipbench_ (it is dropped afterwards)")
    work = Path(tempfile.mkdtemp(prefix=f"{db_name}-"))
    (work / "media").mkdir()
    env = bench_env(db_name, work, redis_url="")
    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)  # measurements run tasks in-process (counted, not run)
    os.environ["DJANGO_SETTINGS_MODULE"] = "qip_portal.settings"

    started = time.perf_counter()
    reused = args.reuse and _db_exists(db_name)
    if not reused:
        print(f"Creating database {db_name}")
        _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{db_name}"')

    import logging

    import django

    django.setup()
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from scripts.bench import generate, loadtest, measure, report, schema

    result: dict = {
        "scale": scale.name,
        "factor": scale.factor,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "machine": machine(),
        "commit": commit(),
        "database": db_name,
    }
    if args.live_plans is not None:
        result["live_plans"] = args.live_plans
    if args.only_sweeps:
        result["only_sweeps"] = True
    try:
        # Import the whole application now (the URLconf imports every view, and through
        # them the services and sweeps), not at the first page or email many minutes
        # later: a tree being edited fails here, at once, and what is measured is the
        # code as it was when the run started.
        importlib.import_module(settings.ROOT_URLCONF)
        t0 = time.perf_counter()
        # A kept database is migrated too: the code measured may have migrations the
        # dataset was generated without (new columns, new tables).
        call_command("migrate", verbosity=0, interactive=False)
        result["schema_patches"] = schema.ensure_schema()
        call_command("collectstatic", verbosity=0, interactive=False)
        print(f"Migrated and collected static files in {time.perf_counter() - t0:.0f} s")
        saved = json.loads(results_file.read_text()) if results_file.exists() else None
        dataset_file = RESULTS / f"{db_name}-dataset.json"
        if reused and dataset_file.exists():
            # What --generate-only wrote about this very database.
            result["dataset"] = json.loads(dataset_file.read_text()).get("dataset")
            result["dataset_generated"] = json.loads(dataset_file.read_text()).get("date")
        elif reused:
            result["dataset"] = (saved or {}).get("dataset")
            main_file = RESULTS / f"{scale.name}.json"
            if not result["dataset"] and args.live_plans is None and main_file.exists():
                result["dataset"] = json.loads(main_file.read_text()).get("dataset")
        else:
            live = "" if args.live_plans is None else f" with {args.live_plans:,} live plans"
            print(f"Generating the {scale.name} dataset{live}")
            result["dataset"] = generate.generate(scale, live_plans=args.live_plans)
        if args.generate_only:
            RESULTS.mkdir(exist_ok=True)
            dataset_file.write_text(json.dumps(result, indent=2, default=str))
            print(f"Generated; kept database {db_name} for a later --reuse run ({dataset_file})")
            connection.close()
            return 0
        if args.only_sweeps:
            print("Measuring the sweeps only")
            result["measurements"] = {
                "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
                "sweeps": measure.measure_sweeps(),
                "loadavg_at_end_of_sweeps": [round(x, 2) for x in os.getloadavg()],
            }
        elif args.only_load and saved:
            # Keep the saved measurements; add (or replace) the load test.
            result = {
                **saved,
                "dataset": result["dataset"] or saved.get("dataset"),
                "load_date": result["date"],
                "load_commit": result["commit"],
            }
        else:
            print("Measuring")
            result["measurements"] = measure.measure_all(scale, requests=args.requests)
        connection.close()
        if not (args.skip_load or args.only_sweeps):
            print(f"Load test: {args.users} users for {args.load_seconds} s")
            load_env = bench_env(db_name, work, redis_url=args.redis)
            load_env["DB_CONN_MAX_AGE"] = "60"  # as docker-compose.yml's app services
            result["load"] = loadtest.run_stack(
                env=load_env, users=args.users, seconds=args.load_seconds, root=ROOT, work=work
            )
        result["elapsed_seconds"] = round(time.perf_counter() - started)
        RESULTS.mkdir(exist_ok=True)
        results_file.write_text(json.dumps(result, indent=2, default=str))
        print(f"Saved {results_file}")
        output = Path(args.output) if args.output else ROOT / "BENCHMARKS.md"
        report.write(output, RESULTS, headline=scale.name if args.output else None)
        print(f"Wrote {output} ({result['elapsed_seconds']} s)")
        load = result.get("load") or {}
        if load and (load.get("login_failures") or load.get("signed_in", 0) < load["users"]):
            # Saved and reported (the mix is judged failed), but the run is not a success.
            print(
                f"FAILED: {load['users'] - load.get('signed_in', 0)} of {load['users']} "
                "load-test users could not sign in: " + "; ".join(load.get("login_failures") or []),
                file=sys.stderr,
            )
            return 1
    finally:
        connection.close()
        if not (args.keep or args.generate_only):
            print(f"Dropping database {db_name}")
            _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
