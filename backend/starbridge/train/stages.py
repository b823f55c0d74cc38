"""The training stages, in order (no PyTorch here, so the CLI can offer them as choices)."""

#: autoencoder -> teacher -> real-data teacher -> JDMD student; each resumes from the one before.
STAGES = ("autoencoder", "teacher", "real-teacher", "student")
