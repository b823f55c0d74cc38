"""The GDScript unit suites (tests/godot/addons/..., mirroring godot_plugin/addons/), run headless in
the real engine by run_tests.gd: golden vectors byte for byte, protobuf codec, ZMTP framing against a
scripted peer, the seqlock ring reader, pose math, the texture upload path, the node's warnings.

All suites run in one Godot process (starting the engine is the slow part); each suite is reported
as its own pytest test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import godot_tool as tool  # noqa: E402

SUITES = sorted((tool.TESTS_DIR / "addons").rglob("test_*.gd"))
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def unit_run(godot: tool.Godot, godot_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("godot-unit")
    out = work / "results.json"
    args = [f"--out={out}", f"--golden={tool.GOLDEN_DIR}", f"--tmp={work}", *map(str, SUITES)]
    proc = tool.run_script(godot, godot_project, tool.TESTS_DIR / "run_tests.gd", args, timeout=RUN_TIMEOUT_S)
    output = proc.stdout + proc.stderr
    assert out.exists(), f"run_tests.gd wrote no results (exit {proc.returncode}):\n{output[-6000:]}"
    return {"results": tool.read_json(out), "output": output, "work": work}


def test_suites_are_found():
    names = {p.stem for p in SUITES}
    assert {"test_engine_codec", "test_zmtp_connection", "test_frame_ring_reader", "test_neural_backdrop"} <= names
    # tests/godot/addons mirrors godot_plugin/addons: every suite tests a script that exists.
    for suite in SUITES:
        relative = suite.relative_to(tool.TESTS_DIR).with_name(suite.name.removeprefix("test_"))
        assert (tool.PLUGIN_DIR / relative).exists(), f"{suite} has no {relative} to test"


@pytest.mark.parametrize("suite", [p.stem for p in SUITES])
def test_suite(unit_run: dict, suite: str):
    results = unit_run["results"].get(suite)
    assert results, f"{suite} did not run:\n{unit_run['output'][-4000:]}"
    failed = {name: r["failures"] for name, r in results.items() if not r["passed"]}
    assert not failed, "\n".join(f"{name}:\n  " + "\n  ".join(f) for name, f in failed.items())
    assert all(r["checks"] > 0 for r in results.values()), f"a test in {suite} checked nothing: {results}"


def test_long_hello_parses_with_the_real_protobuf_runtime(unit_run: dict):
    """A Hello the GDScript writer made with a 300-byte label (a two-byte length), read by protobuf."""
    from starbridge.protocol import engine_pb2 as pb

    msg = pb.EngineMessage()
    msg.ParseFromString((unit_run["work"] / "hello_long_label.bin").read_bytes())
    assert msg.WhichOneof("body") == "hello"
    assert msg.hello.client_label == "x" * 300
    assert (msg.hello.protocol.major, msg.hello.protocol.minor) == (1, 1)
    assert msg.hello.transport == pb.FRAME_TRANSPORT_SHARED_MEMORY


def test_no_script_errors_in_the_run(unit_run: dict):
    assert not tool.errors_in(unit_run["output"]), "\n".join(tool.errors_in(unit_run["output"]))


#: GDScript warnings raised to errors for the strict compile: every one about missing or unsafe types,
#: shadowing, unused code and integer division, in addons too (Godot skips addons by default).
STRICT_WARNINGS = {
    "exclude_addons": "false",
    **{
        name: "2"
        for name in (
            "untyped_declaration", "inference_on_variant", "unsafe_property_access", "unsafe_method_access",
            "unsafe_cast", "unsafe_call_argument", "unused_variable", "unused_local_constant",
            "unused_private_class_variable", "unused_parameter", "unused_signal", "shadowed_variable",
            "shadowed_variable_base_class", "shadowed_global_identifier", "integer_division",
            "narrowing_conversion", "standalone_expression", "static_called_on_instance", "incompatible_ternary",
            "redundant_await", "missing_tool",
        )
    },
}  # fmt: skip


def test_addon_compiles_with_every_type_warning_as_an_error(godot: tool.Godot, godot_project: Path, tmp_path: Path):
    """Static types everywhere: the addon and the demo compile with Godot's type warnings as errors."""
    strict = tmp_path / "strict"
    shutil.copytree(godot_project, strict)
    settings = "\n".join(f"gdscript/warnings/{k}={v}" for k, v in STRICT_WARNINGS.items())
    with (strict / "project.godot").open("a", encoding="utf-8") as f:
        f.write(f"\n[debug]\n\n{settings}\n")
    scripts = sorted(
        "res://" + p.relative_to(strict).as_posix() for p in strict.rglob("*.gd") if ".godot" not in p.parts
    )
    out = tmp_path / "loaded.json"
    proc = tool.run_script(
        godot, strict, tool.TESTS_DIR / "drivers" / "load_scripts_driver.gd", [f"--out={out}", *scripts], timeout=60
    )
    output = proc.stdout + proc.stderr
    assert out.exists(), output[-4000:]
    report = tool.read_json(out)
    assert not report["failed"], "\n".join(tool.errors_in(output)) or output[-4000:]
    assert len(report["loaded"]) == len(scripts) >= 14


def test_editor_opens_the_demo_with_the_plugin_enabled(godot: tool.Godot, godot_project: Path, tmp_path: Path):
    """The editor (headless) loads the project with the plugin enabled and opens the demo scene: the
    EditorPlugin and the @tool node run in the editor without errors. (In a copy: the editor writes.)"""
    project = tmp_path / "editor"
    shutil.copytree(godot_project, project)
    proc = subprocess.run(
        [*godot.command, "--headless", "--editor", "--path", str(project), "res://demo/demo.tscn",
         "--quit-after", "60"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert not tool.errors_in(output) and "ERROR" not in output, output[-4000:]
