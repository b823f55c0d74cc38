"""Builds the Unity package's C# with Mono the way Unity would: one assembly per .asmdef.

Unity compiles every folder holding an `.asmdef` (and its subfolders without one) into that assembly,
with the asmdef's `references`, `precompiledReferences`, `allowUnsafeCode`, `noEngineReferences`,
`defineConstraints` and `versionDefines`. This module reads the package's asmdefs and does the same
with `mcs`, so the asmdefs themselves are tested, not just the sources:

- the core (`noEngineReferences: true`) gets no UnityEngine at all: a Unity type there fails the build;
- every other assembly compiles against the small stubs in `stubs/`, whose members follow Unity's
  documented API, in two flavours: Unity 2022.3 LTS (URP 14 / HDRP 14) and Unity 6 (URP 17 / HDRP 17,
  render graph), chosen with the STUB_UNITY_6 define;
- the tests assembly compiles against NUnit and the core, and runs under `mono` with `nunit-console`.

C# language: `mcs` accepts up to C# 7.x; the package is written in C# 7.3 so Unity 2022.3 and 6 accept it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "unity_plugin"
STUBS = Path(__file__).resolve().parent / "stubs"

#: Stub assemblies: name -> (source files, stub references). Names are Unity's real assembly names.
STUB_ASSEMBLIES: dict[str, tuple[list[str], list[str]]] = {
    "UnityEngine": (["UnityEngine.cs", "UnityEngine.Rendering.cs"], []),
    "UnityEditor": (["UnityEditor.cs"], ["UnityEngine"]),
    "Unity.RenderPipelines.Core.Runtime": (["RenderPipelines.Core.cs"], ["UnityEngine"]),
    "Unity.RenderPipelines.Universal.Runtime": (
        ["RenderPipelines.Universal.cs"],
        ["UnityEngine", "Unity.RenderPipelines.Core.Runtime"],
    ),
    "Unity.RenderPipelines.HighDefinition.Runtime": (
        ["RenderPipelines.HighDefinition.cs"],
        ["UnityEngine", "Unity.RenderPipelines.Core.Runtime"],
    ),
}
#: Unity assemblies an asmdef may reference that the package's code does not use (the Test Framework's):
#: accepted by name, not compiled against.
UNUSED_UNITY_ASSEMBLIES = {"UnityEngine.TestRunner", "UnityEditor.TestRunner"}
#: Packages the stub "project" has installed (for asmdef versionDefines), per flavour.
PACKAGES = {
    "2022.3": {
        "com.unity.render-pipelines.universal": "14.0.11",
        "com.unity.render-pipelines.high-definition": "14.0.11",
    },
    "6000.0": {
        "com.unity.render-pipelines.universal": "17.0.3",
        "com.unity.render-pipelines.high-definition": "17.0.3",
    },
}
#: Scripting symbols Unity defines, per flavour (the ones this package may test).
UNITY_DEFINES = {
    "2022.3": ["UNITY_2022_3_OR_NEWER", "UNITY_2022_2_OR_NEWER", "UNITY_2022_1_OR_NEWER", "UNITY_2021_3_OR_NEWER"],
    "6000.0": [
        "UNITY_6000_0_OR_NEWER",
        "UNITY_2023_1_OR_NEWER",
        "UNITY_2022_3_OR_NEWER",
        "UNITY_2022_2_OR_NEWER",
        "UNITY_2022_1_OR_NEWER",
        "UNITY_2021_3_OR_NEWER",
        "STUB_UNITY_6",
    ],
}


@dataclass(frozen=True)
class Tools:
    mcs: str
    mono: str
    nunit_console: str
    nunit_framework: str


def find_tools() -> tuple[Tools | None, str]:
    """The Mono toolchain, or None and the reason it is unusable."""
    missing = [t for t in ("mcs", "mono", "nunit-console") if shutil.which(t) is None]
    framework = os.environ.get("STARBRIDGE_NUNIT_FRAMEWORK") or next(
        iter(sorted(glob.glob("/usr/lib/cli/nunit.framework-2*/nunit.framework.dll"), reverse=True)), ""
    )
    if not framework or not Path(framework).exists():
        missing.append("nunit.framework.dll")
    if missing:
        return None, (
            f"Mono is not installed ({', '.join(missing)} missing): "
            "apt-get install -y mono-mcs mono-devel nunit-console"
        )
    return Tools(shutil.which("mcs"), shutil.which("mono"), shutil.which("nunit-console"), framework), ""  # type: ignore[arg-type]


@dataclass
class Asmdef:
    path: Path
    data: dict

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def references(self) -> list[str]:
        return list(self.data.get("references", []))


def find_asmdefs(root: Path = PACKAGE) -> list[Asmdef]:
    found = []
    for path in sorted(root.rglob("*.asmdef")):
        with open(path, encoding="utf-8") as f:
            found.append(Asmdef(path, json.load(f)))
    return found


def sources_of(asmdef: Asmdef, all_asmdefs: list[Asmdef]) -> list[Path]:
    """The .cs files Unity compiles into this assembly: its folder, minus subfolders with their own asmdef."""
    others = [a.folder for a in all_asmdefs if a.folder != asmdef.folder and asmdef.folder in a.folder.parents]
    return [p for p in sorted(asmdef.folder.rglob("*.cs")) if not any(o == p.parent or o in p.parents for o in others)]


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("-")[0].split("."))


def _version_matches(expression: str, version: str) -> bool:
    """Unity's versionDefines expressions: "1.2.3" (at least), "[1.0,2.0)" style ranges."""
    v = _version_tuple(version)
    expression = expression.strip()
    if expression[:1] in "[(":
        low, high = (s.strip() for s in expression[1:-1].split(","))
        ok_low = not low or (v >= _version_tuple(low) if expression[0] == "[" else v > _version_tuple(low))
        ok_high = not high or (v <= _version_tuple(high) if expression[-1] == "]" else v < _version_tuple(high))
        return ok_low and ok_high
    return v >= _version_tuple(expression)


def defines_for(asmdef: Asmdef, flavour: str, editor: bool) -> list[str]:
    defines = list(UNITY_DEFINES[flavour])
    if editor:
        defines.append("UNITY_EDITOR")
    for vd in asmdef.data.get("versionDefines", []):
        have = PACKAGES[flavour].get(vd["name"])
        if have is not None and _version_matches(vd.get("expression", "0.0.0"), have):
            defines.append(vd["define"])
    return defines


def run_mcs(
    tools: Tools,
    out: Path,
    sources: list[Path],
    references: list[str],
    defines: list[str],
    unsafe: bool,
    extra: list[str] | None = None,
) -> subprocess.CompletedProcess:
    cmd = [tools.mcs, "-target:library", "-nologo", "-warnaserror", "-debug-", f"-out:{out}"]
    cmd += [f"-r:{r}" for r in references]
    if defines:
        cmd.append("-define:" + ";".join(defines))
    if unsafe:
        cmd.append("-unsafe")
    cmd += extra or []
    cmd += [str(s) for s in sources]
    return subprocess.run(cmd, capture_output=True, text=True)


class BuildError(AssertionError):
    pass


@dataclass
class Build:
    """Built assemblies of one flavour: name -> dll path."""

    flavour: str
    out: Path
    dlls: dict[str, Path] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)


def build_stubs(tools: Tools, flavour: str, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for name, (files, refs) in STUB_ASSEMBLIES.items():
        dll = out / f"{name}.dll"
        result = run_mcs(
            tools,
            dll,
            [STUBS / f for f in files],
            [str(built[r]) for r in refs],
            UNITY_DEFINES[flavour],
            unsafe=False,
            extra=["-nowarn:67,649,169,414"],
        )
        if result.returncode != 0:
            raise BuildError(f"stub {name} ({flavour}) does not compile:\n{result.stdout}{result.stderr}")
        built[name] = dll
    return built


def build_package(
    tools: Tools, flavour: str, out: Path, *, diagnostics: bool = False, only: set[str] | None = None
) -> Build:
    """Compiles every asmdef of the package in dependency order against the stubs of `flavour`.

    `diagnostics` adds STARBRIDGE_DIAGNOSTICS to the core and tests (the allocation counters the
    NUnit tests read). `only`: build just these assemblies (and what they reference).
    """
    build = Build(flavour, out)
    stubs = build_stubs(tools, flavour, out / "stubs")
    asmdefs = {a.name: a for a in find_asmdefs()}
    all_list = list(asmdefs.values())
    wanted = set(asmdefs) if only is None else _closure(only, asmdefs)
    pending = [a for n, a in asmdefs.items() if n in wanted]
    while pending:
        progressed = False
        for a in list(pending):
            local = [r for r in a.references if r in asmdefs]
            if any(r not in build.dlls for r in local):
                continue
            pending.remove(a)
            progressed = True
            if not _constraints_hold(a, flavour):
                build.logs.append(f"{a.name}: skipped, defineConstraints {a.data.get('defineConstraints')} not met")
                continue
            _compile_asmdef(tools, build, a, all_list, asmdefs, stubs, diagnostics)
        if not progressed:
            raise BuildError(f"asmdef references form a cycle or name missing assemblies: {[a.name for a in pending]}")
    return build


def _closure(names: set[str], asmdefs: dict[str, Asmdef]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen or n not in asmdefs:
            continue
        seen.add(n)
        todo += asmdefs[n].references
    return seen


def _is_editor(a: Asmdef) -> bool:
    return a.data.get("includePlatforms") == ["Editor"]


def _constraints_hold(a: Asmdef, flavour: str) -> bool:
    defines = set(defines_for(a, flavour, _is_editor(a))) | {"UNITY_INCLUDE_TESTS"}
    for c in a.data.get("defineConstraints", []):
        if c.startswith("!"):
            if c[1:] in defines:
                return False
        elif c not in defines:
            return False
    return True


def _compile_asmdef(
    tools: Tools,
    build: Build,
    a: Asmdef,
    all_list: list[Asmdef],
    asmdefs: dict[str, Asmdef],
    stubs: dict[str, Path],
    diagnostics: bool,
) -> None:
    sources = sources_of(a, all_list)
    if not sources:
        raise BuildError(f"{a.name} ({a.path}) has no C# sources")
    refs: list[str] = []
    for r in a.references:
        if r in build.dlls:
            refs.append(str(build.dlls[r]))
        elif r in stubs:
            refs.append(str(stubs[r]))
        elif r in UNUSED_UNITY_ASSEMBLIES:
            continue
        elif r in asmdefs:
            raise BuildError(f"{a.name} references {r}, which was not built (its defineConstraints?)")
        else:
            raise BuildError(f"{a.name} references {r}: neither a package assembly nor a stubbed Unity assembly")
    if not a.data.get("noEngineReferences", False):
        refs.append(str(stubs["UnityEngine"]))
        if _is_editor(a):
            refs.append(str(stubs["UnityEditor"]))
    for pre in a.data.get("precompiledReferences", []):
        if pre == "nunit.framework.dll":
            refs.append(tools.nunit_framework)
        else:
            raise BuildError(f"{a.name}: unknown precompiled reference {pre}")
    defines = defines_for(a, build.flavour, _is_editor(a))
    if diagnostics:
        defines.append("STARBRIDGE_DIAGNOSTICS")
    dll = build.out / f"{a.name}.dll"
    result = run_mcs(tools, dll, sources, refs, defines, unsafe=bool(a.data.get("allowUnsafeCode", False)))
    if result.returncode != 0:
        raise BuildError(f"{a.name} ({build.flavour}) does not compile:\n{result.stdout}{result.stderr}")
    build.dlls[a.name] = dll
    build.logs.append(f"{a.name}: {len(sources)} files")
