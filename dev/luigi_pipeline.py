"""A small luigi task graph for the gateway's tests and demo: Extract -> Transform -> Report, and a task
that always fails (so the visualiser has something to mark done or forgive)."""

from __future__ import annotations

from pathlib import Path

import luigi


class _Step(luigi.Task):  # type: ignore[misc]
    out_dir = luigi.Parameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(Path(str(self.out_dir)) / f"{type(self).__name__.lower()}.txt"))

    def _write(self, text: str) -> None:
        with self.output().open("w") as out:
            out.write(text)


class Extract(_Step):
    def run(self) -> None:
        self._write("rows: 3\n")


class Transform(_Step):
    def requires(self) -> luigi.Task:
        return Extract(out_dir=self.out_dir)

    def run(self) -> None:
        with self.input().open() as source:
            self._write(source.read().upper())


class Report(_Step):
    def requires(self) -> luigi.Task:
        return Transform(out_dir=self.out_dir)

    def run(self) -> None:
        with self.input().open() as source:
            self._write(f"report\n{source.read()}")


class AlwaysFails(_Step):
    def run(self) -> None:
        raise RuntimeError("this task fails on purpose (mark it done or forgive it from the visualiser)")
