"""`starbridge model export | info` and `serve --model` argument handling."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from starbridge.cli import main  # noqa: E402
from starbridge.runtime.bundle import read_model  # noqa: E402


def test_export_info_and_overwrite(tmp_path: Path, capsys):
    out = tmp_path / "tiny"
    assert main(["model", "export", "--preset", "star-tiny-test", "--out", str(out)]) == 0
    assert read_model(out).weights == "random (seed 0)"
    assert main(["model", "export", "--preset", "star-tiny-test", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["model", "export", "--preset", "star-tiny-test", "--out", str(out), "--overwrite", "--seed", "2"]) == 0
    assert read_model(out).weights == "random (seed 2)"
    assert main(["model", "info", str(out)]) == 0
    assert "256x144" in capsys.readouterr().out


def test_bad_bundle_and_preset(tmp_path: Path, capsys):
    assert main(["model", "info", str(tmp_path)]) == 1
    assert "no model.json" in capsys.readouterr().err
    assert main(["model", "export", "--preset", "nope", "--out", str(tmp_path / "x")]) == 1
    assert "unknown preset 'nope'; choose one of star-tiny" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path)]) == 1  # not a bundle: refused before binding anything
    assert "no model.json" in capsys.readouterr().err


def test_model_names_resolve_to_packaged_bundles(capsys):
    from starbridge.runtime.bundle import packaged_models, resolve_model

    assert main(["serve", "--model", "no-such-model"]) == 1
    assert "no packaged model of that name" in capsys.readouterr().err
    for name, path in packaged_models().items():
        assert resolve_model(name) == path
        assert read_model(path).name.startswith("star-tiny")
