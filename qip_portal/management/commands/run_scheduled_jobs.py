import time

from django.core.management.base import BaseCommand

from core.jobs import JOBS


class Command(BaseCommand):
    help = "Run every scheduled job once (or, with --every, again and again). Safe to repeat."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only", action="append", default=[], help="Run only this job (repeatable)."
        )
        parser.add_argument(
            "--every",
            type=int,
            default=0,
            metavar="SECONDS",
            help="Keep running, once every SECONDS (the quick start uses this).",
        )

    def handle(self, *args, only, every, **options):
        unknown = set(only) - {job.name for job in JOBS}
        if unknown:
            self.stderr.write(f"Unknown job(s): {', '.join(sorted(unknown))}")
            raise SystemExit(2)
        while True:
            self.run_once(only)
            if not every:
                return
            time.sleep(every)

    def run_once(self, only):
        jobs = [job for job in JOBS if not only or job.name in only]
        if not jobs:
            self.stdout.write("No scheduled jobs are registered.")
        for job in jobs:
            started = time.monotonic()
            result = job.run()
            took = time.monotonic() - started
            self.stdout.write(f"{job.name}: {result} ({took:.2f}s)")
