"""The checked-in generated modules are exactly what protos/ gives (regenerating changes nothing)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_modules_match_protos():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_modules_import_inside_the_package():
    from starbridge.protocol import bridge_pb2, bridge_pb2_grpc, engine_pb2

    assert bridge_pb2.DESCRIPTOR.package == "starbridge.v1"
    assert engine_pb2.DESCRIPTOR.message_types_by_name["EngineMessage"]
    assert hasattr(bridge_pb2_grpc, "BridgeStub")
