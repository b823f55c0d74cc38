namespace StarBridge.Core
{
    /// <summary>What an engine says in Hello (engine.proto Hello). 0 and "" ask for the backend's default.</summary>
    public sealed class HelloRequest
    {
        public uint ProtocolMajor = ProtocolVersion.Major;
        public uint ProtocolMinor = ProtocolVersion.Minor;
        /// <summary>Free text for logs and stats, e.g. "Unity".</summary>
        public string EngineName = "";
        /// <summary>Free text, e.g. "6000.0.23f1".</summary>
        public string EngineVersion = "";
        /// <summary>Scene to roam in; empty: the backend's default scene.</summary>
        public string SceneId = "";
        /// <summary>Wanted frame size in pixels; 0: the backend's default.</summary>
        public uint Width;
        public uint Height;
        /// <summary>Wanted frames per second; 0: the backend's default.</summary>
        public float Fps;
        public FrameTransport Transport = FrameTransport.SharedMemory;
        /// <summary>Access token when the backend was started with one; empty: none.</summary>
        public string Token = "";
        /// <summary>A name for this client in the backend's logs; empty: none.</summary>
        public string ClientLabel = "";
        /// <summary>gRPC only (attach to an OpenSession session); engines leave it empty.</summary>
        public string SessionId = "";
    }

    /// <summary>Layout of a shared-memory frame ring (engine.proto SharedMemoryLayout). Sizes in bytes.</summary>
    public sealed class SharedMemoryLayout
    {
        public string Path = "";
        public uint LayoutVersion;
        public uint HeaderBytes;
        public uint SlotCount;
        public uint SlotBytes;
        public uint SlotHeaderBytes;
        public uint Stride;
        public uint PixelFormat;
        public ulong FileBytes;
    }

    /// <summary>The backend's answer to Hello (engine.proto Welcome). Immutable once received.</summary>
    public sealed class WelcomeInfo
    {
        public string SessionId = "";
        public uint ProtocolMajor;
        public uint ProtocolMinor;
        /// <summary>Agreed frame size and rate.</summary>
        public int Width;
        public int Height;
        public float Fps;
        public FrameTransport Transport;
        /// <summary>Set when the transport is shared memory; null otherwise.</summary>
        public SharedMemoryLayout SharedMemory;
        public string SceneId = "";
        /// <summary>Scene length in seconds (the scene clock loops at this length).</summary>
        public double SceneDurationS;
        /// <summary>A session silent for this long is closed; the client's keep-alive follows it.</summary>
        public float HeartbeatTimeoutS;
        public uint BlockFrames;
        /// <summary>Which generator makes the frames, e.g. "explicit-fill" or "star-tiny".</summary>
        public string Generator = "";
        public string BackendVersion = "";
        /// <summary>
        /// Protocol 1.1: the secret that re-attaches to this session (Hello.session_secret). Unused by this
        /// client (it starts a new session after a loss); keep it private and never log it. Empty before 1.1.
        /// </summary>
        public string SessionSecret = "";

        public string ProtocolText { get { return ProtocolMajor + "." + ProtocolMinor; } }
    }

    /// <summary>An Error the backend sent (engine.proto Error).</summary>
    public sealed class BackendError
    {
        public ErrorCode Code;
        /// <summary>Human-readable: the field, the bound it broke, and the likely fix.</summary>
        public string Message = "";
        /// <summary>True: the session is gone (or was never made).</summary>
        public bool Fatal;
        /// <summary>The offending field's path; empty when not about one field.</summary>
        public string Field = "";

        public override string ToString()
        {
            return "backend error " + Code + (Fatal ? " (fatal)" : "") + ": " + Message;
        }
    }

    /// <summary>
    /// Everything known about one frame: FrameReady's fields or, for shared memory, the slot header's
    /// (which describe the pixels actually copied), plus when it arrived. A value type, copied freely.
    /// </summary>
    public struct FrameMeta
    {
        public ulong FrameSequence;
        /// <summary>Ring slot the frame came from (shared memory); 0 for inline frames.</summary>
        public uint Slot;
        /// <summary>Sequence of the latest pose the backend had when it scheduled this frame.</summary>
        public ulong PoseSequence;
        /// <summary>That pose's engine clock, echoed (<see cref="EngineClock"/> microseconds).</summary>
        public ulong EngineTimeUs;
        /// <summary>The pose the frame was generated for (wire convention, anchor-relative).</summary>
        public Vec3 Position;
        public Quat Rotation;
        public float VerticalFovDeg;
        /// <summary>Viewport aspect the frame was made for; 0: the frame's own (see <see cref="EffectiveAspect"/>).</summary>
        public float Aspect;
        public double SceneTimeS;
        public float GenerationLatencyMs;
        public int Width;
        public int Height;
        /// <summary>When the frame arrived, <see cref="EngineClock"/> microseconds.</summary>
        public long ReceivedTimeUs;
        /// <summary>Shared memory or inline.</summary>
        public FrameTransport Transport;

        /// <summary>The horizontal/vertical aspect the frame covers: <see cref="Aspect"/>, or width / height when 0.</summary>
        public float EffectiveAspect
        {
            get { return Aspect > 0f ? Aspect : (Height > 0 ? (float)Width / Height : 1f); }
        }
    }
}
