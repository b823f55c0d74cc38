"""Training star-tiny: the block pool, the losses, the staged trainer and evaluation helpers. The procedural data
it trains on is made in `starbridge.scenes.procedural`."""
