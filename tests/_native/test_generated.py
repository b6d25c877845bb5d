"""The generated-text cache: reused across calls, never trusted when changed or not private."""

from __future__ import annotations

import os

import pytest

from modelstore._native import generated
from modelstore._native.generated import cached_text, generation_key, read_text


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / generated.FOLDER


def counting(text):
    calls = []

    def generate():
        calls.append(1)
        return text

    return generate, calls


def test_a_second_call_reads_the_cache(cache):
    key = generation_key({"unit": 1})
    generate, calls = counting("int x;\n")
    first = cached_text(key, generate)
    second = cached_text(key, generate)
    assert first[0] == second[0] == "int x;\n"
    assert first[1] == second[1]
    assert (first[2], second[2]) == (True, False)
    assert calls == [1]
    assert read_text(key, first[1]) == "int x;\n"


def test_a_changed_text_is_generated_again(cache):
    key = generation_key({"unit": 2})
    generate, calls = counting("int x;\n")
    _, digest, _ = cached_text(key, generate)
    (cache / f"{key}.src").write_text('system("rm -rf /");\n')
    assert read_text(key, digest) is None
    text, again, fresh = cached_text(key, generate)
    assert (text, again, fresh) == ("int x;\n", digest, True)
    assert calls == [1, 1]


def test_a_folder_others_can_write_is_not_used(cache):
    key = generation_key({"unit": 3})
    generate, calls = counting("int x;\n")
    _, digest, _ = cached_text(key, generate)
    os.chmod(cache, 0o777)  # noqa: S103 (the unsafe folder under test)
    try:
        assert read_text(key, digest) is None
        assert cached_text(key, generate)[2] is True
        assert calls == [1, 1]
    finally:
        os.chmod(cache, 0o700)


def test_keys_differ_with_what_was_generated():
    assert generation_key({"columns": [[0, ""]]}) != generation_key({"columns": [[0, "re"]]})


def test_the_gradient_key_covers_every_module_of_the_generator():
    """A change to any module the derivative unit's text comes from must change its key."""
    import ast
    from pathlib import Path

    from modelstore._native import gradient

    here = Path(gradient.__file__).parent
    seen, todo = set(), ["gradient_source.py"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((here / name).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "modelstore._native."
            ):
                todo.append(node.module.rsplit(".", 1)[1] + ".py")
    assert seen <= set(gradient._GENERATOR_MODULES), sorted(seen - set(gradient._GENERATOR_MODULES))
