"""StarBridge: a real-time neural backdrop for game engines.

The backend serves a 4D world recovered from one reference video: for every camera pose a game
engine sends, it generates the frame that camera would see (DESIGN.md).
"""

__version__ = "0.1.0"

# Wire protocol version (DESIGN.md section 4): a different major is refused, a newer minor works.
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1
