"""`publish_models`: a progress bar over the models on a terminal, nothing elsewhere."""

from __future__ import annotations

import pytest

from modelstore.publish import build
from modelstore.publish.build import PublishResult, publish_models


@pytest.fixture
def quick_publish(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the build of each upstream model (minutes) by a record of the call."""
    built: list[int] = []

    def publish_one(
        root: str, index: int, version: str, native: bool, native_lowering: int
    ) -> PublishResult:
        built.append(index)
        return PublishResult(f"model-{index}", version, "published", 0.0)

    monkeypatch.setattr(build, "_publish_one", publish_one)
    monkeypatch.setattr(build, "_require_upstream", lambda: None)
    return built


def test_a_bar_over_the_models_when_progress_is_shown(
    quick_publish: list[int], tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from modelstore.registry import Registry

    monkeypatch.setenv("MODELSTORE_PROGRESS", "1")
    results = publish_models(Registry(tmp_path / "r"), [0, 3, 5], "1.0.0")
    assert [r.model_id for r in results] == ["model-0", "model-3", "model-5"]
    assert quick_publish == [0, 3, 5]
    err = capsys.readouterr().err
    assert "publishing" in err and "/3 [" in err
    monkeypatch.delenv("MODELSTORE_PROGRESS")
    publish_models(Registry(tmp_path / "r"), [1], "1.0.0")
    assert capsys.readouterr().err == ""  # not a terminal
