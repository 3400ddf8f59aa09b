"""Scales and fixed names shared by the generator, the measurements and the load test."""

from __future__ import annotations

from dataclasses import dataclass

# The dataset of issue 10 at full scale.
FULL = {
    "locations": 200,
    "plans": 20_000,
    "indicators": 60_000,
    "measurements": 1_000_000,
    "evidence": 50_000,
}

SCALES = {"tiny": 1 / 1000, "small": 1 / 100, "medium": 1 / 10, "full": 1.0}

# Everyone generated signs in with this password (the load test posts the login form).
PASSWORD = "bench-portal-password-2026"  # noqa: S105  # nosec B105 - synthetic users only
SEED = 2026

# The two plans the plan page and the closure report page are measured on: five
# indicators of sixty weekly points each, with actions, evidence and history.
SHOWCASE_LIVE = "Bench showcase: falls prevention (live)"
SHOWCASE_REVIEW = "Bench showcase: medicines audit (closure review)"
IMPORT_TARGET = "Bench import target"
SHOWCASE_INDICATORS = 5
SHOWCASE_POINTS = 60


@dataclass(frozen=True)
class Scale:
    name: str
    factor: float

    def count(self, what: str, minimum: int = 1) -> int:
        return max(minimum, round(FULL[what] * self.factor))

    @property
    def locations(self) -> int:
        return self.count("locations", 3)

    @property
    def plans(self) -> int:
        return self.count("plans", 20)

    @property
    def indicators(self) -> int:
        return self.count("indicators", 60)

    @property
    def measurements(self) -> int:
        return self.count("measurements", 1000)

    @property
    def evidence(self) -> int:
        return self.count("evidence", 50)

    @property
    def import_rows(self) -> int:
        return 5000 if self.factor >= 1 / 100 else 100

    @property
    def spc_series(self) -> int:
        return max(200, round(60_000 * self.factor))


def scale(name: str) -> Scale:
    return Scale(name, SCALES[name])
