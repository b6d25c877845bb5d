"""Threat 7: a publisher killed with SIGKILL at random points never leaves a broken version."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelstore.registry import Registry

PUBLISHER = Path(__file__).with_name("publisher.py")


def kill_campaign(root: Path, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    next_minor, killed_in_flight = 0, 0
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, str(PUBLISHER), str(root), str(next_minor), "1000"],
            stdout=subprocess.PIPE,
            text=True,
        )
        # wait until it has imported and set up (however loaded the machine is), then let it
        # publish for a random while: most kills land inside a publish
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.05, 0.35))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        published = [
            int(line.split()[1]) for line in out.splitlines() if line.startswith("published")
        ]
        next_minor = (max(published) + 1 if published else next_minor) + 1
        killed_in_flight += 1
        # after every kill: the index reads, and its newest version verifies completely
        registry = Registry(root)
        if registry.index().models:
            newest = registry.resolve("default")
            assert all(c.status == "ok" for c in registry.verify([f"default@{newest[1]}"]))
    registry = Registry(root)
    checks = registry.verify()
    assert checks and all(c.status == "ok" for c in checks), [c for c in checks if c.status != "ok"]
    return {
        "kills": killed_in_flight,
        "versions": len(registry.index().models.get("default").versions)
        if registry.index().models
        else 0,
        "leftovers": len(registry.store.leftovers()),
    }


def test_sigkill_during_publish_few(tmp_path):
    figures = kill_campaign(tmp_path / "reg", kills=8, seed=1)
    assert figures["versions"] > 0


@pytest.mark.slow
def test_sigkill_during_publish_100_times(tmp_path, capsys):
    figures = kill_campaign(tmp_path / "reg", kills=100, seed=2)
    with capsys.disabled():
        print(f"\ncrash campaign: {figures}")
    assert figures["kills"] == 100 and figures["versions"] > 0
