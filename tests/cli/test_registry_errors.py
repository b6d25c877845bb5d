"""Registry-facing CLI errors: missing registries, missing formats, names and terminal escapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from registry_helpers import unsign

from modelstore.cli import main
from modelstore.registry import INDEX_PATH, Registry


def invoke(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(main, list(args), env=env)


def one_error_line(result: object) -> str:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("kind", ["missing", "empty"])
@pytest.mark.parametrize(
    "args", [["list"], ["show", "default"], ["get", "default"], ["verify"], ["verify", "default"]]
)
def test_a_missing_registry_is_an_error_naming_the_path(
    kind: str, args: list[str], tmp_path: Path
) -> None:
    folder = tmp_path / "nowhere"
    if kind == "empty":
        folder.mkdir()
    result = invoke("--registry", str(folder), *args)
    expected = "no such registry folder" if kind == "missing" else "not a modelstore registry"
    if args[0] == "verify":  # the index check, then the summary line
        assert "Traceback" not in result.output
        line = result.output.splitlines()[0]
        assert result.exit_code == 2
    else:
        line = one_error_line(result)
        assert result.exit_code == 1
    assert str(folder) in line and expected in line, line
    assert not (tmp_path / "default-1.2.0").exists()


def test_missing_registry_from_the_environment(tmp_path: Path) -> None:
    result = invoke("list", env={"MODELSTORE_REGISTRY": str(tmp_path / "nowhere")})
    assert result.exit_code == 1
    assert "no such registry folder" in one_error_line(result)


def test_get_a_format_the_version_lacks(small_registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(
        "--registry",
        str(small_registry.root),
        "get",
        "default@1.0.0",
        "--format",
        "c",
        "-o",
        str(out),
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "default@1.0.0 has no c format (it has: pickle, reference, srepr)" in line
    assert not out.exists() or list(out.iterdir()) == []
    # without --format, every file the version has
    result = invoke("--registry", str(small_registry.root), "get", "default@1.0.0", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "manifest.json" in result.output


@pytest.mark.parametrize("ref", ["٠", "０", "۰", "𝟎"])
def test_unicode_digits_are_not_upstream_indices(ref: str) -> None:
    result = invoke("show", ref)
    assert result.exit_code == 1
    assert "no model" in one_error_line(result)


def test_ascii_index_still_resolves() -> None:
    assert invoke("show", "0").exit_code == 0


def test_titles_with_escape_sequences_are_escaped(small_registry: Registry) -> None:
    index_path = small_registry.root / INDEX_PATH
    index = json.loads(index_path.read_text())
    index["models"]["default"]["title"] = "Evil\x1b[2J\x1b]0;pwned\x07 title\u202e"
    index_path.write_text(json.dumps(index))
    unsign(small_registry)
    result = invoke("--registry", str(small_registry.root), "list")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\u202e" not in result.output
    assert "Evil\\x1b[2J" in result.output
    result = invoke("--registry", str(small_registry.root), "show", "Evil\x1b[2J")
    assert "\x1b" not in result.output


def test_printable() -> None:
    from modelstore.cli import printable

    assert printable("a\x1bb\nc\u200bd λ") == "a\\x1bb\\nc\\u200bd λ"


@pytest.mark.parametrize("command", [["list"], ["show", "default"], ["verify", "default"]])
def test_registry_option_after_the_subcommand(
    command: list[str], small_registry: Registry, tmp_path: Path
) -> None:
    result = invoke(command[0], "--registry", str(small_registry.root), *command[1:])
    assert result.exit_code == 0, result.output
    # and it really is that registry
    result = invoke(command[0], "--registry", str(tmp_path / "nowhere"), *command[1:])
    assert "no such registry folder" in result.output


def test_registry_option_after_a_nested_subcommand(small_registry: Registry) -> None:
    result = invoke("cache", "fetch", "--registry", str(small_registry.root), "default@1.0.0")
    assert "No such option" not in result.output
