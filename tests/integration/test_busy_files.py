"""Files that change all the time: a log appended every few milliseconds still snapshots."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import amber


def test_a_file_appended_every_few_milliseconds_is_snapshotted_whole(repo: amber.Repo, work: Path) -> None:
    run = work / "run"
    run.mkdir()
    log = run / "train.log"
    log.write_text("")
    stop = threading.Event()

    def writer() -> None:
        with log.open("a") as fh:
            i = 0
            while not stop.is_set():
                fh.write(f"step {i} loss 0.{i % 97:02}\n")
                fh.flush()
                i += 1
                time.sleep(0.003)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.1)
        versions = [repo.snapshot(str(run), model="m") for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    for v in versions:
        out = Path(repo.export(v.ref, work / f"out-{v.number}"))
        text = (out / "train.log").read_text()
        assert text.endswith("\n")  # cut between two appends, never inside one
        lines = text.splitlines()
        assert lines and lines == [f"step {i} loss 0.{i % 97:02}" for i in range(len(lines))]
