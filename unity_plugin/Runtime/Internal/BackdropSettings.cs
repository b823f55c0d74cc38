using System;
using System.Globalization;

namespace StarBridge.Core
{
    /// <summary>
    /// Everything a <see cref="BackdropClient"/> needs to know. 0 and "" ask for the backend's defaults.
    /// The client copies the settings when it starts; change them by starting a new client.
    /// </summary>
    public sealed class BackdropSettings
    {
        public const int DefaultPort = 50052;
        public const int MaxFrameSide = 8192;
        public const float MaxFps = 120f;

        /// <summary>The backend's engine channel: "host:port", "tcp://host:port" or "host" (port 50052).</summary>
        public string Endpoint = "127.0.0.1:" + DefaultPort;
        /// <summary>Scene id; empty: the backend's default scene.</summary>
        public string SceneId = "";
        /// <summary>Wanted frame size in pixels; 0: the backend's default.</summary>
        public int Width;
        public int Height;
        /// <summary>Wanted frames per second; 0: the backend's default.</summary>
        public float Fps;
        /// <summary>Shared memory (same machine, no copy through the socket) or inline (any machine).</summary>
        public FrameTransport Transport = FrameTransport.SharedMemory;
        /// <summary>When the frame ring cannot be opened (a backend on another machine), say Hello again with inline frames.</summary>
        public bool FallBackToInline = true;
        /// <summary>Access token, when the backend was started with --token.</summary>
        public string Token = "";
        public string EngineName = "StarBridge C#";
        public string EngineVersion = "";
        /// <summary>A name for this client in the backend's logs.</summary>
        public string ClientLabel = "";
        /// <summary>How long one connection attempt may take.</summary>
        public int ConnectTimeoutMs = 2000;
        /// <summary>How long to wait for Welcome after Hello.</summary>
        public int HelloTimeoutMs = 5000;
        /// <summary>First and longest wait between reconnection attempts; the wait doubles in between.</summary>
        public int ReconnectMinDelayMs = 250;
        public int ReconnectMaxDelayMs = 5000;
        /// <summary>Poses are sent at most this many times per frame the session makes (they are also sent when the camera is still, as heartbeats).</summary>
        public float PosesPerFrame = 2f;

        // Tests only: speak another protocol version (a version-mismatch test needs it).
        internal uint ProtocolMajor = ProtocolVersion.Major;
        internal uint ProtocolMinor = ProtocolVersion.Minor;

        /// <summary>A copy (the client keeps its own).</summary>
        public BackdropSettings Clone() { return (BackdropSettings)MemberwiseClone(); }

        /// <summary>Throws ArgumentException naming the field and the bound it broke.</summary>
        public void Validate()
        {
            string host;
            int port;
            ParseEndpoint(Endpoint, out host, out port);
            CheckSize("Width", Width);
            CheckSize("Height", Height);
            if ((Width == 0) != (Height == 0))
            {
                throw new ArgumentException("Width and Height must both be 0 (the backend's default) or both set, got " + Width + "x" + Height, "Width");
            }
            if (float.IsNaN(Fps) || Fps < 0f || Fps > MaxFps)
            {
                throw new ArgumentException("Fps must be in [0, " + MaxFps + "] (0: the backend's default), got " + Fps, "Fps");
            }
            if (Transport != FrameTransport.SharedMemory && Transport != FrameTransport.Inline)
            {
                throw new ArgumentException("Transport must be SharedMemory or Inline, got " + Transport, "Transport");
            }
            if (ConnectTimeoutMs <= 0 || HelloTimeoutMs <= 0) throw new ArgumentException("timeouts must be positive", "ConnectTimeoutMs");
            if (ReconnectMinDelayMs <= 0 || ReconnectMaxDelayMs < ReconnectMinDelayMs)
            {
                throw new ArgumentException("reconnect delays must satisfy 0 < min <= max, got " + ReconnectMinDelayMs + " and " + ReconnectMaxDelayMs, "ReconnectMinDelayMs");
            }
            if (!(PosesPerFrame >= 1f)) throw new ArgumentException("PosesPerFrame must be at least 1, got " + PosesPerFrame, "PosesPerFrame");
        }

        static void CheckSize(string name, int value)
        {
            if (value < 0 || value > MaxFrameSide)
            {
                throw new ArgumentException(name + " must be in [0, " + MaxFrameSide + "] pixels (0: the backend's default), got " + value, name);
            }
        }

        /// <summary>
        /// Splits "tcp://host:port", "host:port", "[v6]:port" or "host" into host and port (default 50052).
        /// Throws ArgumentException naming the endpoint when it is not one of those.
        /// </summary>
        public static void ParseEndpoint(string endpoint, out string host, out int port)
        {
            string s = (endpoint ?? "").Trim();
            if (s.StartsWith("tcp://", StringComparison.OrdinalIgnoreCase)) s = s.Substring(6);
            port = DefaultPort;
            host = s;
            if (s.StartsWith("["))
            {
                int close = s.IndexOf(']');
                if (close < 0) throw BadEndpoint(endpoint);
                host = s.Substring(1, close - 1);
                string rest = s.Substring(close + 1);
                if (rest.Length > 0)
                {
                    if (rest[0] != ':') throw BadEndpoint(endpoint);
                    port = ParsePort(rest.Substring(1), endpoint);
                }
            }
            else
            {
                int colon = s.LastIndexOf(':');
                if (colon >= 0)
                {
                    if (s.IndexOf(':') != colon) throw BadEndpoint(endpoint); // a bare IPv6 address needs brackets
                    host = s.Substring(0, colon);
                    port = ParsePort(s.Substring(colon + 1), endpoint);
                }
            }
            if (host.Length == 0 || host == "*") throw BadEndpoint(endpoint);
        }

        static int ParsePort(string text, string endpoint)
        {
            int port;
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port < 1 || port > 65535)
            {
                throw BadEndpoint(endpoint);
            }
            return port;
        }

        static ArgumentException BadEndpoint(string endpoint)
        {
            return new ArgumentException("Endpoint must look like 127.0.0.1:50052 (or tcp://host:port), got '" + endpoint + "'", "Endpoint");
        }
    }
}
