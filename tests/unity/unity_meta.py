"""Unity `.meta` files of the package: one per file and folder, with stable GUIDs.

A package installed from a git URL is immutable: Unity ignores any asset without a `.meta` file there, and
scenes and defaults reference scripts and shaders by the GUIDs the metas hold. So every asset carries a
committed meta whose GUID is derived from its path (md5 of "starbridge-unity-plugin:<path>"), and the demo
scene refers to the same GUIDs.

    python tests/unity/unity_meta.py            # list what is missing or wrong
    python tests/unity/unity_meta.py --write    # write the missing metas (existing ones are kept)
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "unity_plugin"
#: Script field -> asset it defaults to (MonoImporter defaultReferences), so no Shader.Find is needed.
DEFAULT_REFERENCES = {
    "Runtime/NeuralBackdrop.cs": {"_shader": ("Runtime/Shaders/NeuralBackdrop.shader", 4800000)},
}
_IMPORTER_TAIL = "  userData: \n  assetBundleName: \n  assetBundleVariant: \n"


def guid_for(rel: str) -> str:
    return hashlib.md5(f"starbridge-unity-plugin:{rel}".encode()).hexdigest()


def assets(root: Path = PACKAGE) -> list[Path]:
    """Every file and folder Unity imports (hidden names and metas excluded; `Foo~` folders are not
    imported themselves, but what is inside a sample folder is, once the sample is imported)."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or p.suffix == ".meta":
            continue
        if p.is_dir() and p.name.endswith("~"):
            continue
        out.append(p)
    return out


def expected_meta(path: Path, root: Path = PACKAGE) -> str:
    rel = path.relative_to(root).as_posix()
    head = f"fileFormatVersion: 2\nguid: {guid_for(rel)}\n"
    if path.is_dir():
        return head + "folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n" + _IMPORTER_TAIL
    suffix = path.suffix
    if suffix == ".cs":
        refs = DEFAULT_REFERENCES.get(rel, {})
        lines = "".join(
            f"  - {name}: {{fileID: {file_id}, guid: {guid_for(target)}, type: 3}}\n"
            for name, (target, file_id) in refs.items()
        )
        default_refs = "  defaultReferences:\n" + lines if lines else "  defaultReferences: []\n"
        return (
            head
            + "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n"
            + default_refs
            + "  executionOrder: 0\n  icon: {instanceID: 0}\n"
            + _IMPORTER_TAIL
        )
    if suffix == ".shader":
        return (
            head + "ShaderImporter:\n  externalObjects: {}\n  defaultTextures: []\n  nonModifiableTextures: []\n"
            "  preprocessorOverride: 0\n" + _IMPORTER_TAIL
        )
    if suffix == ".asmdef":
        return head + "AssemblyDefinitionImporter:\n  externalObjects: {}\n" + _IMPORTER_TAIL
    if path.name == "package.json":
        return head + "PackageManifestImporter:\n  externalObjects: {}\n" + _IMPORTER_TAIL
    if suffix in (".md", ".txt", ".json"):
        return head + "TextScriptImporter:\n  externalObjects: {}\n" + _IMPORTER_TAIL
    return head + "DefaultImporter:\n  externalObjects: {}\n" + _IMPORTER_TAIL


def problems(root: Path = PACKAGE) -> list[str]:
    found: list[str] = []
    guids: dict[str, str] = {}
    imported = set(assets(root))
    for p in imported:
        meta = p.with_name(p.name + ".meta")
        rel = p.relative_to(root).as_posix()
        if not meta.exists():
            found.append(f"{rel}: no .meta (run python tests/unity/unity_meta.py --write)")
            continue
        text = meta.read_text(encoding="utf-8")
        m = re.search(r"^guid: ([0-9a-f]{32})$", text, re.M)
        if m is None:
            found.append(f"{rel}.meta: no 32-hex-digit guid")
            continue
        if m.group(1) in guids:
            found.append(f"{rel}.meta: guid {m.group(1)} also used by {guids[m.group(1)]}")
        guids[m.group(1)] = rel
        if text != expected_meta(p, root):
            found.append(f"{rel}.meta: differs from what unity_meta.py writes (guid, importer or default references)")
    for meta in sorted(root.rglob("*.meta")):
        asset = meta.with_name(meta.name[: -len(".meta")])
        if asset not in imported:
            found.append(f"{meta.relative_to(root).as_posix()}: no asset of that name")
    return found


def write_missing(root: Path = PACKAGE) -> list[Path]:
    written = []
    for p in assets(root):
        meta = p.with_name(p.name + ".meta")
        if not meta.exists():
            meta.write_text(expected_meta(p, root), encoding="utf-8")
            written.append(meta)
    return written


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        for m in write_missing():
            print("wrote", m.relative_to(PACKAGE))
    issues = problems()
    print("\n".join(issues) or "all metas present and consistent")
    sys.exit(1 if issues else 0)
