"""Scene bundles and where they come from (docs/architecture.md §6).

- `bundle`: the bundle format (scene.json + memory-mappable .npy arrays), `SceneMeta`, `SceneBundle`,
  atomic `write_bundle` with scene-space normalisation.
- `procedural`: procedural 4D worlds with exact ground truth: the ray-caster, `DemoWorld`, styles, camera
  paths, training / benchmark samples, the benchmark street.
- `demo`: the built-in demo scene bundle (`build_demo_scene`), rendered from the procedural world of seed 0.
- `importer`: a video file (PyAV) plus depth files, an ONNX depth model, or nothing -> a bundle.
- `store`: `SceneStore`, the folder of bundles the backend serves from.

Modules are imported on demand (``from starbridge.scenes.store import SceneStore``); this package
imports nothing itself, so importing one part does not pull in PyAV or ONNX Runtime.
"""
