using System;
using System.Threading;

namespace StarBridge.Core
{
    /// <summary>
    /// One engine's connection to the StarBridge backend (docs/architecture.md sections 4 and 5): it says Hello,
    /// sends the camera pose, picks up frames (shared-memory ring or inline), keeps statistics, and
    /// reconnects by itself with backoff when the backend goes away.
    ///
    /// <para>Threads. The caller's (main) thread only stores the newest pose, queues clock commands,
    /// takes the newest frame and reads the status: short locks, no I/O, no allocation, never a wait
    /// on the network. A connection thread owns the connection's lifecycle and everything sent
    /// (Hello, poses at most <see cref="BackdropSettings.PosesPerFrame"/> per frame of the session,
    /// keep-alive poses while the engine is paused, Goodbye). A receive thread per connection reads
    /// messages and copies each frame into a preallocated triple buffer (<see cref="FrameExchange"/>).</para>
    ///
    /// <para>Usage:</para>
    /// <code>
    /// var client = new BackdropClient(new BackdropSettings { Endpoint = "127.0.0.1:50052" });
    /// client.Start();
    /// // every engine tick:
    /// client.SubmitPose(wirePosition, wireRotation, verticalFovDeg, aspect);
    /// FrameBuffer frame;
    /// if (client.TryTakeFrame(out frame)) { /* upload frame.Pixels; frame.Meta has the generation pose */ }
    /// // at the end:
    /// client.Dispose();   // says Goodbye
    /// </code>
    /// </summary>
    public sealed partial class BackdropClient : IDisposable
    {
        /// <summary>How long Stop() waits for the connection thread to say Goodbye and finish.</summary>
        public const int StopTimeoutMs = 1000;
        const int TimeQueueCapacity = 8;
        const long MinKeepAliveUs = 100000, MaxKeepAliveUs = 1000000, MinSilenceUs = 5000000;

        readonly BackdropSettings _settings;
        readonly string _host;
        readonly int _port;
        readonly object _lock = new object();
        readonly AutoResetEvent _wake = new AutoResetEvent(false);
        readonly ManualResetEvent _stopEvent = new ManualResetEvent(false);
        readonly System.Random _random = new System.Random();
        Thread _ioThread;
        volatile bool _stopRequested;
        volatile bool _reconnectRequested;
        string _goodbyeReason = "";

        // The newest pose from the caller, and the last one sent (for keep-alives). Under _lock.
        bool _posePending, _haveLastPose;
        PoseSample _pose, _lastPose;
        ulong _poseSequence;

        // Clock commands queued by the caller, and the playback state re-applied to every new session. Under _lock.
        readonly TimeCommand[] _timeQueue = new TimeCommand[TimeQueueCapacity];
        readonly TimeCommand[] _timeOut = new TimeCommand[TimeQueueCapacity];
        int _timeCount;
        bool _paused;
        float _speed = 1f;

        // Buffers the connection thread encodes into.
        readonly byte[] _poseBuffer = new byte[ZmtpConnection.HeaderReserve + EngineCodec.MaxPoseBytes];
        readonly byte[] _timeBuffer = new byte[ZmtpConnection.HeaderReserve + 64];

        // Status. Under _lock.
        ConnectionState _state = ConnectionState.Stopped;
        string _detail = "not started";
        WelcomeInfo _welcome;
        FrameTransport _transportInUse;
        int _reconnects;
        int _attempts;
        long _posesSent;
        bool _streamedOnce;

        struct PoseSample
        {
            public Vec3 Position;
            public Quat Rotation;
            public float VerticalFovDeg, Aspect;
            public long EngineTimeUs;
        }

        struct TimeCommand
        {
            public TimeAction Action;
            public double TimeS;
            public float Speed;
        }

        /// <summary>A session the backend refused for a reason retrying cannot fix.</summary>
        sealed class RefusedException : Exception
        {
            public RefusedException(string message) : base(message) { }
        }

        /// <summary>Validates and copies <paramref name="settings"/>; throws ArgumentException naming a bad field.</summary>
        public BackdropClient(BackdropSettings settings)
        {
            if (settings == null) throw new ArgumentNullException("settings");
            settings.Validate();
            _settings = settings.Clone();
            BackdropSettings.ParseEndpoint(_settings.Endpoint, out _host, out _port);
            _envelope = new byte[MaxEnvelopeBytes];
        }

        /// <summary>The endpoint as "tcp://host:port".</summary>
        public string Endpoint { get { return "tcp://" + _host + ":" + _port; } }

        // ================================================================== caller's thread

        /// <summary>Starts connecting in the background. Returns at once; idempotent.</summary>
        public void Start()
        {
            lock (_lock)
            {
                if (_ioThread != null) return;
                _ioThread = new Thread(ConnectionLoop) { IsBackground = true, Name = "StarBridge connection" };
                _state = ConnectionState.Connecting;
                _detail = "connecting to " + Endpoint;
            }
            _ioThread.Start();
        }

        /// <summary>
        /// Ends the session with Goodbye and stops the threads, waiting at most <see cref="StopTimeoutMs"/>.
        /// A stopped client stays stopped; make a new one to connect again. Idempotent.
        /// </summary>
        public void Stop(string reason = "engine stopped")
        {
            Thread thread;
            lock (_lock)
            {
                thread = _ioThread;
                if (_stopRequested) return;
                _goodbyeReason = reason ?? "";
                _stopRequested = true;
            }
            _stopEvent.Set();
            _wake.Set();
            if (thread != null && thread != Thread.CurrentThread) thread.Join(StopTimeoutMs);
            lock (_lock)
            {
                _state = ConnectionState.Stopped;
                _detail = "stopped";
            }
        }

        public void Dispose() { Stop("client disposed"); }

        /// <summary>Skips the reconnection delay, and leaves the Refused state, trying again now.</summary>
        public void Reconnect()
        {
            _reconnectRequested = true;
            _wake.Set();
        }

        /// <summary>
        /// Stores the camera pose (wire convention, camera-to-world, relative to the scene anchor) to send.
        /// Only the newest pose is kept; the connection thread sends it. Never blocks, never allocates.
        /// <paramref name="aspect"/> is the viewport's width / height (0: the frame's).
        /// </summary>
        public void SubmitPose(Vec3 position, Quat rotation, float verticalFovDeg, float aspect)
        {
            long now = EngineClock.NowMicroseconds();
            lock (_lock)
            {
                _pose.Position = position;
                _pose.Rotation = rotation;
                _pose.VerticalFovDeg = verticalFovDeg;
                _pose.Aspect = aspect;
                _pose.EngineTimeUs = now;
                _posePending = true;
            }
            _wake.Set();
        }

        /// <summary>Resumes the scene clock (kept for later sessions too).</summary>
        public void Play()
        {
            lock (_lock) _paused = false;
            QueueTime(TimeAction.Play, 0.0, 0f);
        }

        /// <summary>Freezes the scene clock; the camera can still roam (kept for later sessions too).</summary>
        public void Pause()
        {
            lock (_lock) _paused = true;
            QueueTime(TimeAction.Pause, 0.0, 0f);
        }

        /// <summary>Jumps the scene clock to <paramref name="timeS"/> seconds (this session only).</summary>
        public void Seek(double timeS) { QueueTime(TimeAction.Seek, timeS, 0f); }

        /// <summary>Sets the playback speed, 0 &lt; speed &lt;= 8 (kept for later sessions too).</summary>
        public void SetSpeed(float speed)
        {
            lock (_lock) _speed = speed;
            QueueTime(TimeAction.SetSpeed, 0.0, speed);
        }

        /// <summary>Whether the scene clock was asked to pause, and at what speed it plays.</summary>
        public bool Paused { get { lock (_lock) return _paused; } }
        public float Speed { get { lock (_lock) return _speed; } }

        void QueueTime(TimeAction action, double timeS, float speed)
        {
            lock (_lock)
            {
                if (_timeCount == TimeQueueCapacity)
                {
                    Array.Copy(_timeQueue, 1, _timeQueue, 0, TimeQueueCapacity - 1); // drop the oldest
                    _timeCount--;
                }
                _timeQueue[_timeCount].Action = action;
                _timeQueue[_timeCount].TimeS = timeS;
                _timeQueue[_timeCount].Speed = speed;
                _timeCount++;
            }
            _wake.Set();
        }

        /// <summary>
        /// The newest frame that arrived since the last call (true), or false when none did: keep showing
        /// the frame you have. The buffer is yours until your next call; it is reused, never reallocated
        /// while the frame size stays the same.
        /// </summary>
        public bool TryTakeFrame(out FrameBuffer frame)
        {
            FrameExchange exchange = Volatile.Read(ref _exchange);
            if (exchange == null)
            {
                frame = null;
                return false;
            }
            return exchange.TryTake(out frame);
        }

        /// <summary>A snapshot of the connection state and statistics. Allocates nothing.</summary>
        public ClientStatus Status
        {
            get
            {
                ClientStatus s = default(ClientStatus);
                lock (_lock)
                {
                    s.State = _state;
                    s.Detail = _detail;
                    s.Welcome = _welcome;
                    s.Reconnects = _reconnects;
                    s.Attempts = _attempts;
                    s.PosesSent = _posesSent;
                    s.LastError = _lastError;
                    s.ErrorCount = _errorCount;
                    s.Transport = _transportInUse;
                }
                long now = EngineClock.NowMicroseconds();
                lock (_statsLock)
                {
                    s.FramesPerSecond = _rate.PerSecond(now);
                    _latency.Percentiles(out s.LatencyP50Ms, out s.LatencyP95Ms);
                    s.GenerationLatencyMs = _generationMs;
                    s.FramesReceived = _framesReceived;
                    s.FramesMissed = _framesMissed;
                }
                return s;
            }
        }
    }
}
