"""World capture from one real video: camera tracking, dense depth, moving-object masks.

A stage per module, each usable on its own and tested against ground-truth clips
(scenes/procedural/clips.py):

* `cuts`: shot boundaries (a clip with several shots keeps its longest shot, or is split);
* `tracking`: every frame's camera pose and the intrinsics, by structure from motion (pycolmap); its parts
  `track_types` (settings, result), `track_features`, `track_rotation` (rotation only), `track_mapping`
  (COLMAP's mapper), `track_fov` (the field-of-view search) and `track_register` (the other frames);
* `depth`: dense depth per frame from the tracked cameras (multi-view plane sweep); its parts `depth_config`,
  `depth_sweep` (cost volume, winner), `depth_sgm` (aggregation), `depth_fill` (consistency, sky, fill),
  `depth_fuse` (the confident depths across frames), `depth_upsample` (the colour-guided upsampling, redone
  when a bundle loads), `depth_ops` (image and camera helpers); `depth_align` aligns a user's monocular depth;
* `dynamic`: the pixels that disagree with the static reconstruction across views (moving objects);
* `user_depth`: depth the user brings (files or an ONNX model), validated and aligned to the tracked scale;
* `pipeline`: the stages in order, with progress and a report of how the scene was made.
"""
