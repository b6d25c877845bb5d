"""Progress shows on a terminal only, and the environment variable overrides the guess."""

from __future__ import annotations

from modelstore import progress


def test_quiet_off_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    # pytest's captured stderr is not a TTY
    assert not progress.enabled()
    progress.note("building")
    with progress.step("compiling"):
        pass
    assert list(progress.progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_forced_on_prints_one_line_per_step(monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    with progress.step("compiling default@1.4.0"):
        pass
    err = capsys.readouterr().err.splitlines()
    assert err == ["compiling default@1.4.0 ...", "compiling default@1.4.0: done"]
    assert list(progress.progress(range(4), desc="models")) == [0, 1, 2, 3]
    assert "models" in capsys.readouterr().err


def test_forced_off(monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, "0")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert not progress.enabled()


def test_counter_draws_a_bar_only_for_work_left(monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    with progress.counter(desc="events", unit=" events") as report:
        assert report is not None
        report(10, 10)  # done in one go: no bar
    assert capsys.readouterr().err == ""
    with progress.counter(desc="events", unit=" events") as report:
        report(3, 8)
        report(8, 8)
    assert "events" in capsys.readouterr().err


def test_counter_follows_the_rule_unless_told(monkeypatch, capsys):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    with progress.counter() as report:
        assert report is None  # not a terminal
    with progress.counter(desc="forced", show=True) as report:
        report(1, None)
    assert "forced" in capsys.readouterr().err
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    with progress.counter(show=False) as report:
        assert report is None
