namespace StarBridge.Core
{
    /// <summary>Where a <see cref="BackdropClient"/> stands.</summary>
    public enum ConnectionState
    {
        /// <summary>Not started, or stopped.</summary>
        Stopped = 0,
        /// <summary>Opening the TCP connection and the ZMTP handshake.</summary>
        Connecting = 1,
        /// <summary>Hello sent, waiting for Welcome.</summary>
        Handshaking = 2,
        /// <summary>In a session: poses go out, frames come in.</summary>
        Streaming = 3,
        /// <summary>The backend went away (or never answered); the next attempt follows a backoff delay.</summary>
        Reconnecting = 4,
        /// <summary>The backend refused this client for a reason retrying cannot fix (protocol major, scene,
        /// token, settings); the detail says which. Change the settings or call Reconnect().</summary>
        Refused = 5,
    }

    /// <summary>
    /// A snapshot of a client: connection state and why, the session, and frame statistics. A value type
    /// whose strings are made only when the state changes, so reading it every frame allocates nothing.
    /// </summary>
    public struct ClientStatus
    {
        public ConnectionState State;
        /// <summary>A sentence about the state: what is happening, or why not and what to do.</summary>
        public string Detail;
        /// <summary>The current (or last) session's Welcome; null before the first.</summary>
        public WelcomeInfo Welcome;
        /// <summary>Frames received per second over the last second.</summary>
        public float FramesPerSecond;
        /// <summary>Pose-to-frame latency on the engine clock over the last 128 frames, milliseconds.</summary>
        public float LatencyP50Ms;
        public float LatencyP95Ms;
        /// <summary>The backend's generation time of the newest frame, milliseconds.</summary>
        public float GenerationLatencyMs;
        /// <summary>Frames received since the client started.</summary>
        public long FramesReceived;
        /// <summary>FrameReady messages whose frame could not be read (overwritten ring slot, wrong size).</summary>
        public long FramesMissed;
        /// <summary>Poses sent since the client started (heartbeats included).</summary>
        public long PosesSent;
        /// <summary>Sessions started after the first one (reconnections).</summary>
        public int Reconnects;
        /// <summary>Connection attempts since the client started (successful or not).</summary>
        public int Attempts;
        /// <summary>The latest non-fatal Error from the backend (e.g. a refused pose), and how many there were.</summary>
        public BackendError LastError;
        public int ErrorCount;
        /// <summary>The transport in use (inline after a shared-memory fallback).</summary>
        public FrameTransport Transport;

        public bool IsStreaming { get { return State == ConnectionState.Streaming; } }
    }
}
