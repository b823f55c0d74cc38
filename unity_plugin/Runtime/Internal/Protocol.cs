// The engine channel's vocabulary (protos/starbridge/v1/engine.proto): protocol version, enums,
// and the version check every plugin runs on Welcome (docs/architecture.md §4).

namespace StarBridge.Core
{
    /// <summary>How frames reach the engine (engine.proto FrameTransport).</summary>
    public enum FrameTransport
    {
        /// <summary>Not chosen: the backend picks shared memory.</summary>
        Unspecified = 0,
        /// <summary>A memory-mapped frame ring the backend creates (same machine only).</summary>
        SharedMemory = 1,
        /// <summary>Raw pixels as the second part of each FrameReady message (any machine).</summary>
        Inline = 2,
    }

    /// <summary>Scene clock actions (engine.proto TimeControl.Action).</summary>
    public enum TimeAction
    {
        Unspecified = 0,
        Play = 1,
        Pause = 2,
        Seek = 3,
        SetSpeed = 4,
    }

    /// <summary>Error codes the backend sends (engine.proto ErrorCode).</summary>
    public enum ErrorCode
    {
        Unspecified = 0,
        InvalidArgument = 1,
        ProtocolMismatch = 2,
        UnknownScene = 3,
        Unauthenticated = 4,
        Malformed = 5,
        NoSession = 6,
        Timeout = 7,
        Overloaded = 8,
        Internal = 9,
        /// <summary>Protocol 1.1: the backend is stopping (sent to every session, not fatal). Not a fault:
        /// the client keeps the last frame and reconnects with backoff at once.</summary>
        ShuttingDown = 10,
    }

    /// <summary>The protocol version this plugin speaks, and the check of the backend's.</summary>
    public static class ProtocolVersion
    {
        /// <summary>A different major is refused by both sides.</summary>
        public const uint Major = 1;
        /// <summary>A newer minor on the other side works with what both sides know.</summary>
        public const uint Minor = 1;

        /// <summary>"major.minor" of this plugin.</summary>
        public static string Text { get { return Major + "." + Minor; } }

        /// <summary>
        /// Null when a backend speaking <paramref name="theirMajor"/>.<paramref name="theirMinor"/> works
        /// with a plugin speaking <paramref name="ourMajor"/>.<paramref name="ourMinor"/>; otherwise the
        /// error message, naming both versions and the fix (the same words as the Python client).
        /// </summary>
        public static string Check(uint ourMajor, uint ourMinor, uint theirMajor, uint theirMinor)
        {
            if (theirMajor == ourMajor) return null; // any minor: newer minors add only what we may ignore
            return "protocol mismatch: this client speaks " + ourMajor + "." + ourMinor + ", the backend " +
                   theirMajor + "." + theirMinor +
                   "; update the client or the backend so the major versions match";
        }
    }
}
