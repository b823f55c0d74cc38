"""The Unity package as Unity and the Package Manager see it: manifest, metas, docs, sample scene, shader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import unity_meta

PACKAGE = unity_meta.PACKAGE
#: STYLE.md: small files that do one thing.
MAX_LINES = 600


def test_unity_package_manifest():
    manifest = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    assert re.fullmatch(r"com(\.[a-z0-9-]+){2,}", manifest["name"]), manifest["name"]
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", manifest["version"]), "semantic version"
    assert manifest["unity"] == "2022.3"  # the minimum: Unity 6 (6000.x) is newer and accepted
    assert manifest["license"] == "Apache-2.0"
    assert "dependencies" not in manifest or not manifest["dependencies"], "URP/HDRP stay optional"
    for sample in manifest["samples"]:
        assert (PACKAGE / sample["path"]).is_dir(), sample
        assert sample["path"].startswith("Samples~/")


def test_unity_every_asset_has_a_stable_meta():
    assert unity_meta.problems() == []


def test_unity_changelog_follows_keep_a_changelog():
    manifest = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    text = (PACKAGE / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "keepachangelog.com" in text and "semver.org" in text
    assert "## [Unreleased]" in text
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, re.M)
    assert released and released[0] == manifest["version"], "the newest release is the package version"


def test_unity_license_and_readme():
    license_text = (PACKAGE / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    readme = (PACKAGE / "README.md").read_text(encoding="utf-8")
    for heading in ("## Install", "## Set up", "## Settings", "## Troubleshooting"):
        assert heading in readme
    assert "?path=unity_plugin" in readme


def test_unity_sample_scene_references_the_package_scripts():
    scene = (PACKAGE / "Samples~/Demo/DemoScene.unity").read_text(encoding="utf-8")
    assert scene.startswith("%YAML 1.1\n%TAG !u! tag:unity3d.com,2011:\n")
    for script in ("Runtime/NeuralBackdrop.cs", "Samples~/Demo/DemoCameraPath.cs"):
        assert f"guid: {unity_meta.guid_for(script)}, type: 3" in scene, script
    assert unity_meta.guid_for("Runtime/Shaders/NeuralBackdrop.shader") in scene
    ids = re.findall(r"^--- !u!\d+ &(\d+)$", scene, re.M)
    assert len(ids) == len(set(ids)), "file ids are unique"
    for ref in re.findall(r"\{fileID: (\d+)\}", scene):
        assert ref == "0" or ref in ids, f"dangling fileID {ref}"
    # every serialized field of the component exists in the component's source
    fields = re.findall(r"^  (_\w+):", scene, re.M)
    source = (PACKAGE / "Runtime/NeuralBackdrop_Properties.cs").read_text(encoding="utf-8")
    source += (PACKAGE / "Samples~/Demo/DemoCameraPath.cs").read_text(encoding="utf-8")
    for name in fields:
        assert re.search(rf"\b{name}\b", source), f"scene field {name} is not in the scripts"


def test_unity_shader_declares_what_the_renderer_sets():
    shader = (PACKAGE / "Runtime/Shaders/NeuralBackdrop.shader").read_text(encoding="utf-8")
    renderer = (PACKAGE / "Runtime/BackdropRenderer.cs").read_text(encoding="utf-8")
    name = re.search(r'ShaderName = "([^"]+)"', renderer).group(1)
    assert f'Shader "{name}"' in shader
    for prop in re.findall(r'Shader\.PropertyToID\("(\w+)"\)', renderer):
        assert re.search(rf"\b{prop}\b", shader.split("HLSLPROGRAM", 1)[1]), f"shader does not declare {prop}"
    keyword = re.search(r'ExposureKeyword = "(\w+)"', renderer).group(1)
    assert f"multi_compile_local __ {keyword}" in shader


def test_unity_sources_are_small_and_csharp_7_3():
    for path in sorted(PACKAGE.rglob("*.cs")):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= MAX_LINES, f"{path.name} has more than {MAX_LINES} lines"
        # features newer than C# 7.3 that Unity 2022.3's compiler would reject without a newer LangVersion
        for pattern, feature in (
            (r"\brecord\s+(class|struct)?\s*\w+\s*[({]", "records (C# 9)"),
            (r"\binit;", "init accessors (C# 9)"),
            (r"\?\?=", "??= (C# 8)"),
            (r"\bswitch\s*\{", "switch expressions (C# 8)"),
            (r"^\s*using\s+var\b", "using declarations (C# 8)"),
            (r"\bnew\(\)\s*[;{]", "target-typed new (C# 9)"),
            (r"\bnamespace\s+[\w.]+;", "file-scoped namespaces (C# 10)"),
        ):
            assert not re.search(pattern, text, re.M), f"{path.name} uses {feature}"


def test_unity_one_sealed_component_per_job():
    sources = {p.name: p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.cs")}
    assert "public sealed partial class NeuralBackdrop : MonoBehaviour" in sources["NeuralBackdrop.cs"]
    assert "public sealed partial class NeuralBackdrop" in sources["NeuralBackdrop_Properties.cs"]
    assert (
        "public sealed class NeuralBackdropFeature : ScriptableRendererFeature" in sources["NeuralBackdropFeature.cs"]
    )
    assert "public sealed class NeuralBackdropCustomPass : CustomPass" in sources["NeuralBackdropCustomPass.cs"]


def test_unity_tests_folder_has_no_stray_python_names():
    """pytest collects by basename across tests/: ours all start with test_unity_."""
    here = Path(__file__).resolve().parent
    for p in here.glob("test_*.py"):
        assert p.name.startswith("test_unity_"), p.name
