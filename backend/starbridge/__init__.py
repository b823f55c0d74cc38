"""StarBridge: a real-time neural backdrop for game engines.

The backend serves a 4D world recovered from one reference video: for every camera pose a game
engine sends, it generates the frame that camera would see (docs/architecture.md).
"""

__version__ = "0.1.0"
