"""No page shows figures older than the last change to its plan, across processes: two
portal processes (tests/core/freshness_driver.py), as two web nodes or a web node and a
worker, share one database and one Redis. Each caches the plan page's content; a change
made by the other is shown by the next view."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.core.worker import ROOT, RedisServer, migrated_database


class Portal:
    def __init__(self, env: dict):
        self.process = subprocess.Popen(
            [sys.executable, "tests/core/freshness_driver.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def __call__(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the portal process ended"
        answer = json.loads(line)
        assert "error" not in answer, answer["error"]
        return answer

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def test_a_change_in_one_process_is_shown_at_once_by_the_other(tmp_path):
    database = tmp_path / "two.sqlite3"
    env = dict(
        os.environ,
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{database}",
        MEDIA_ROOT=str(tmp_path / "media"),
        PYTHONUNBUFFERED="1",
        DERIVED_CACHE_SECONDS="3600",  # only the versions can make a view see the change
    )
    env.pop("REDIS_URL", None)
    migrated_database(database, tmp_path=tmp_path, env=env)
    with RedisServer(tmp_path) as redis_server:
        env["REDIS_URL"] = redis_server.url
        a, b = Portal(env), Portal(env)
        try:
            first, second = a(op="setup")["references"]
            page = f"/plans/{first}/"
            other = f"/plans/{second}/"
            view = {"op": "view", "username": "lead"}

            computed = b(**view, path=page, needles=["Restock the night kit"])
            cached = b(**view, path=page)
            assert computed["status"] == cached["status"] == 200
            assert cached["queries"] < computed["queries"] / 2  # served from the cache
            b(**view, path=other)
            other_cached = b(**view, path=other)["queries"]

            # Process A changes the first plan; B's next view shows it.
            a(op="add_action", reference=first, description="Restock the night kit")
            seen = b(**view, path=page, needles=["Restock the night kit"])
            assert seen["found"]["Restock the night kit"], "B showed the page from before"
            # ...and B's cache of the other plan was not emptied by it.
            assert b(**view, path=other)["queries"] == other_cached

            # The other way round, through a bulk path (QuerySet.update: no signals).
            a(**view, path=page)
            b(op="rename_indicator", reference=first, name="Falls per 1,000 bed days")
            seen = a(**view, path=page, needles=["Falls per 1,000 bed days"])
            assert seen["found"]["Falls per 1,000 bed days"], "A showed the page from before"

            # The register and the closure report too.
            b(**view, path="/plans/")
            a(op="add_action", reference=second, description="Second plan action")
            assert b(
                **view, path=f"/governance/plans/{second}/report/", needles=["Second plan action"]
            )["found"]["Second plan action"]
        finally:
            a.close()
            b.close()
