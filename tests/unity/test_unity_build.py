"""The whole Unity package compiles, assembly by assembly as its asmdefs say, for Unity 2022.3 and Unity 6.

Only the core (StarBridge.Core) and the tests run for real (test_unity_nunit.py); the Unity-facing
assemblies (component, URP feature, HDRP pass, inspector, sample) are verified by compilation against
stubs/ whose members follow Unity's documented API, so a misspelt or mistyped Unity call fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import unity_toolchain as toolchain

ALL_ASSEMBLIES = {
    "StarBridge.Core",
    "StarBridge.Runtime",
    "StarBridge.Runtime.Universal",
    "StarBridge.Runtime.HighDefinition",
    "StarBridge.Editor",
    "StarBridge.Tests",
    "StarBridge.Samples.Demo",
}


@pytest.mark.parametrize("flavour", ["2022.3", "6000.0"])
def test_unity_package_compiles_against_the_documented_api(mono, tmp_path: Path, flavour: str):
    build = toolchain.build_package(mono, flavour, tmp_path)
    assert set(build.dlls) == ALL_ASSEMBLIES, build.logs


def test_unity_urp_compatibility_mode_compiles_on_unity_6(mono, tmp_path: Path, monkeypatch):
    """Unity 6 with the URP_COMPATIBILITY_MODE scripting define: the render-graph-less Execute path."""
    defines = dict(toolchain.UNITY_DEFINES)
    defines["6000.0"] = [*defines["6000.0"], "URP_COMPATIBILITY_MODE"]
    monkeypatch.setattr(toolchain, "UNITY_DEFINES", defines)
    build = toolchain.build_package(mono, "6000.0", tmp_path, only={"StarBridge.Runtime.Universal"})
    assert "StarBridge.Runtime.Universal" in build.dlls


def test_unity_core_needs_no_unity_at_all(mono, tmp_path: Path):
    """The core's asmdef says noEngineReferences: it compiles with no UnityEngine in reach."""
    core = next(a for a in toolchain.find_asmdefs() if a.name == "StarBridge.Core")
    assert core.data["noEngineReferences"] is True and core.references == []
    sources = toolchain.sources_of(core, toolchain.find_asmdefs())
    result = toolchain.run_mcs(mono, tmp_path / "core.dll", sources, [], [], unsafe=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bUnityEngine\b|\bUnityEditor\b", text), f"{path.name} mentions Unity"


def test_unity_stubs_catch_a_misspelt_unity_call(mono, tmp_path: Path):
    """The stubs are strict: a call Unity does not document fails the build (here a typo and a wrong overload)."""
    stubs = toolchain.build_stubs(mono, "2022.3", tmp_path / "stubs")
    for body in ("t.LoadRawTextureDta(data);", "t.Apply(0);", "Camera c = null; c.AddCommandBuffer(null);"):
        source = tmp_path / "Typo.cs"
        source.write_text(
            "using UnityEngine;\nclass Typo { void F(Texture2D t, byte[] data) { " + body + " } }\n", encoding="utf-8"
        )
        result = toolchain.run_mcs(mono, tmp_path / "typo.dll", [source], [str(stubs["UnityEngine"])], [], False)
        assert result.returncode != 0, f"the stub accepted: {body}"


def test_unity_asmdefs_follow_unity_rules():
    asmdefs = toolchain.find_asmdefs()
    names = [a.name for a in asmdefs]
    assert len(names) == len(set(names)), names
    folders = {a.folder.relative_to(toolchain.PACKAGE).as_posix(): a for a in asmdefs}
    for folder in ("Runtime", "Runtime/Internal", "Editor", "Tests"):
        assert folder in folders, f"{folder}/ has no asmdef"
    assert folders["Editor"].data["includePlatforms"] == ["Editor"]
    tests = folders["Tests"].data
    assert tests["defineConstraints"] == ["UNITY_INCLUDE_TESTS"] and tests["precompiledReferences"] == [
        "nunit.framework.dll"
    ]
    assert tests["overrideReferences"] is True and tests["autoReferenced"] is False
    for a in asmdefs:
        for vd in a.data.get("versionDefines", []):
            assert vd["define"] in a.data.get("defineConstraints", []), (
                f"{a.name}: {vd['define']} defined but not required"
            )
        assert toolchain.sources_of(a, asmdefs), f"{a.name} compiles no sources"
    # the render-pipeline assemblies compile only where their pipeline is installed
    assert folders["Runtime/Universal"].data["defineConstraints"] == ["STARBRIDGE_URP"]
    assert folders["Runtime/HighDefinition"].data["defineConstraints"] == ["STARBRIDGE_HDRP"]
