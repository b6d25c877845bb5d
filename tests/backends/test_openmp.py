"""The OpenMP wait policy: the ``modelstore`` command's threads sleep between native calls."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from modelstore._native.openmp import WAIT_POLICY_ENV, prefer_sleeping_threads

# OMP_DISPLAY_ENV=verbose makes the OpenMP runtime print the settings it took when it loads;
# GOMP_SPINCOUNT is how long an idle thread spins (0: it sleeps at once)
RUN_CLI = "import sys; from modelstore.cli import main; main(sys.argv[1:])"
RUN_LIBRARY = (
    "from modelstore import published_model; "
    "print('D(1232)', published_model('default@1.1.0', backend='native').intensity(1.0, 3.0))"
)


def _runtime_settings(tmp_path, code: str, *args: str, policy: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != WAIT_POLICY_ENV}
    env |= {"OMP_DISPLAY_ENV": "verbose", "MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}
    if policy is not None:
        env[WAIT_POLICY_ENV] = policy
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "D(1232)" in proc.stdout
    settings = {
        name.strip(): value.strip().strip("'")
        for name, _, value in (line.partition("=") for line in proc.stderr.splitlines())
        if name.strip() in (WAIT_POLICY_ENV, "GOMP_SPINCOUNT")
    }
    assert WAIT_POLICY_ENV in settings, proc.stderr  # the native model's OpenMP runtime loaded
    if "GOMP_SPINCOUNT" not in settings:
        pytest.skip("the OpenMP runtime is not GNU libgomp (no GOMP_SPINCOUNT shown)")
    return settings


def test_the_command_loads_openmp_with_sleeping_threads(tmp_path):
    cli = ("rates", "default@1.1.0", "--no-compare")
    settings = _runtime_settings(tmp_path, RUN_CLI, *cli, policy=None)
    assert settings["GOMP_SPINCOUNT"] == "0"
    # the library alone leaves the runtime's default (threads spin a while), as it should
    library = _runtime_settings(tmp_path, RUN_LIBRARY, policy=None)
    assert int(library["GOMP_SPINCOUNT"]) > 0


def test_a_wait_policy_the_user_set_is_kept(tmp_path):
    cli = ("rates", "default@1.1.0", "--no-compare")
    settings = _runtime_settings(tmp_path, RUN_CLI, *cli, policy="ACTIVE")
    assert settings[WAIT_POLICY_ENV] == "ACTIVE"
    assert int(settings["GOMP_SPINCOUNT"]) > 0


@pytest.mark.parametrize(("before", "after"), [(None, "PASSIVE"), ("active", "active")])
def test_prefer_sleeping_threads_only_fills_an_unset_variable(monkeypatch, before, after):
    monkeypatch.delenv(WAIT_POLICY_ENV, raising=False)
    if before is not None:
        monkeypatch.setenv(WAIT_POLICY_ENV, before)
    prefer_sleeping_threads()
    assert os.environ[WAIT_POLICY_ENV] == after
