using System;
using System.Threading;

namespace StarBridge.Core
{
    // The receive side of BackdropClient: one thread per connection reads every message the backend
    // sends (Welcome, FrameReady with or without a pixel part, Error) and copies frames into the
    // preallocated triple buffer. It allocates only for a Welcome or an Error, never per frame.
    public sealed partial class BackdropClient
    {
        /// <summary>Largest envelope read (Welcome is a few hundred bytes); larger ones are skipped.</summary>
        public const int MaxEnvelopeBytes = 64 * 1024;
        const int ReceiverJoinMs = 1000;
        const int GoodbyeDrainMs = 200;

        readonly byte[] _envelope;
        Thread _receiver;
        FrameMeta _decoded;
        FrameExchange _exchange;
        FrameRingReader _ring;
        ulong _lastFrameSequence;
        long _lastReceiveUs;

        // Set by the receive thread for the connection thread. Under _lock.
        bool _welcomeArrived;
        WelcomeInfo _pendingWelcome;
        string _ringFailure;
        BackendError _fatalError;
        bool _shutdownNotice;
        Exception _receiveFailure;
        BackendError _lastError;
        int _errorCount;

        // Statistics. Under _statsLock.
        readonly object _statsLock = new object();
        readonly LatencyWindow _latency = new LatencyWindow();
        readonly RateMeter _rate = new RateMeter();
        float _generationMs;
        long _framesReceived, _framesMissed;

#if STARBRIDGE_DIAGNOSTICS
        /// <summary>Tests: bytes the receive thread allocated so far (GC.GetAllocatedBytesForCurrentThread).</summary>
        internal long ReceiverAllocatedBytes;
#endif

        void StartReceiving(ZmtpConnection connection)
        {
            lock (_lock)
            {
                _receiveFailure = null;
                _fatalError = null;
                _shutdownNotice = false;
            }
            Interlocked.Exchange(ref _lastReceiveUs, EngineClock.NowMicroseconds());
            _receiver = new Thread(ReceiveLoop) { IsBackground = true, Name = "StarBridge receive" };
            _receiver.Start(connection);
        }

        /// <summary>Closes the connection (after letting a Goodbye drain), joins the receive thread, unmaps the ring.</summary>
        void EndConnection(ZmtpConnection connection)
        {
            if (connection != null)
            {
                connection.ShutdownSend(); // FIN after anything queued (a Goodbye) ...
                if (_receiver != null) _receiver.Join(GoodbyeDrainMs); // ... and a moment for the backend to read it
                connection.Dispose();
            }
            bool receiverDone = true;
            if (_receiver != null)
            {
                receiverDone = _receiver.Join(ReceiverJoinMs);
                _receiver = null;
            }
            FrameRingReader ring = _ring;
            _ring = null;
            // Unmap only once the receive thread is gone: it may be copying out of the mapping. (A thread that
            // did not finish keeps the mapping alive; it is never unmapped under a reader.)
            if (ring != null && receiverDone) ring.Dispose();
        }

        void ReceiveLoop(object state)
        {
            ZmtpConnection connection = (ZmtpConnection)state;
            try
            {
                while (true)
                {
                    bool more;
                    long size;
                    connection.ReadFrameHeader(out more, out size);
                    long now = EngineClock.NowMicroseconds();
                    Interlocked.Exchange(ref _lastReceiveUs, now);
                    if (size > _envelope.Length)
                    {
                        connection.SkipBody(size);
                        SkipRest(connection, more);
                        continue;
                    }
                    connection.ReadBody(_envelope, 0, (int)size);
                    BackendMessageKind kind;
                    WelcomeInfo welcome;
                    BackendError error;
                    try
                    {
                        kind = EngineCodec.DecodeBackend(_envelope, 0, (int)size, ref _decoded, out welcome, out error);
                    }
                    catch (StarBridgeException)
                    {
                        SkipRest(connection, more); // not an envelope we can read: ignore it, as the Python client does
                        continue;
                    }
                    if (kind == BackendMessageKind.Frame) more = OnFrame(connection, more, now);
                    else if (kind == BackendMessageKind.Welcome) OnWelcome(welcome);
                    else if (kind == BackendMessageKind.Error) OnError(error);
                    SkipRest(connection, more);
#if STARBRIDGE_DIAGNOSTICS
                    Volatile.Write(ref ReceiverAllocatedBytes, GC.GetAllocatedBytesForCurrentThread());
#endif
                }
            }
            catch (Exception e)
            {
                if (connection.IsClosed) return; // we closed it: not a failure
                lock (_lock) _receiveFailure = e;
                _wake.Set();
            }
        }

        static void SkipRest(ZmtpConnection connection, bool more)
        {
            while (more)
            {
                long size;
                connection.ReadFrameHeader(out more, out size);
                connection.SkipBody(size);
            }
        }

        void OnWelcome(WelcomeInfo welcome)
        {
            string ringFailure = null;
            FrameRingReader ring = null;
            bool speaks = ProtocolVersion.Check(_settings.ProtocolMajor, _settings.ProtocolMinor,
                                                welcome.ProtocolMajor, welcome.ProtocolMinor) == null;
            if (speaks)
            {
                if (welcome.Width <= 0 || welcome.Height <= 0 || welcome.Width > BackdropSettings.MaxFrameSide ||
                    welcome.Height > BackdropSettings.MaxFrameSide)
                {
                    ringFailure = null;
                    lock (_lock)
                    {
                        _fatalError = new BackendError
                        {
                            Code = ErrorCode.Malformed,
                            Fatal = true,
                            Message = "Welcome agreed an impossible frame size " + welcome.Width + "x" + welcome.Height,
                        };
                    }
                    _wake.Set();
                    return;
                }
                FrameExchange exchange = _exchange;
                if (exchange == null || exchange.Width != welcome.Width || exchange.Height != welcome.Height)
                {
                    Volatile.Write(ref _exchange, new FrameExchange(welcome.Width, welcome.Height));
                }
                if (welcome.Transport == FrameTransport.SharedMemory)
                {
                    if (welcome.SharedMemory == null || welcome.SharedMemory.Path.Length == 0)
                    {
                        ringFailure = "Welcome chose shared memory but named no frame ring";
                    }
                    else
                    {
                        try
                        {
                            ring = FrameRingReader.Open(welcome.SharedMemory.Path, welcome.SharedMemory, welcome.Width, welcome.Height);
                        }
                        catch (StarBridgeException e)
                        {
                            ringFailure = e.Message;
                        }
                    }
                }
            }
            if (_ring != null) _ring.Dispose(); // a second Hello on this connection replaces the session
            _ring = ring;
            _lastFrameSequence = 0;
            lock (_lock)
            {
                _pendingWelcome = welcome;
                _welcomeArrived = true;
                _ringFailure = ringFailure;
            }
            _wake.Set();
        }

        /// <summary>Picks up the frame a FrameReady announces; returns whether message parts remain unread.</summary>
        bool OnFrame(ZmtpConnection connection, bool more, long now)
        {
            FrameExchange exchange = _exchange;
            if (exchange == null || _decoded.FrameSequence <= _lastFrameSequence) return more; // stale, or no session yet
            FrameBuffer back = exchange.Back;
            bool ok = false;
            if (more)
            {
                long size;
                connection.ReadFrameHeader(out more, out size);
                if (size == (long)exchange.Width * exchange.Height * 4 && _decoded.Width == exchange.Width &&
                    _decoded.Height == exchange.Height)
                {
                    connection.ReadBody(back.Pixels, 0, (int)size);
                    back.Meta = _decoded;
                    back.Meta.Transport = FrameTransport.Inline;
                    ok = true;
                }
                else
                {
                    connection.SkipBody(size);
                }
            }
            else if (_ring != null)
            {
                // The slot FrameReady names; if the writer reused it meanwhile, the newest frame instead. The
                // metadata then comes from the slot header, so it always describes the pixels copied.
                ok = _ring.ReadSlot((int)Math.Min(_decoded.Slot, int.MaxValue), back) &&
                     back.Meta.FrameSequence == _decoded.FrameSequence;
                if (!ok) ok = _ring.ReadLatest(_lastFrameSequence, back);
            }
            if (!ok)
            {
                lock (_statsLock) _framesMissed++;
                return more;
            }
            back.Meta.ReceivedTimeUs = now;
            _lastFrameSequence = back.Meta.FrameSequence;
            float latencyMs = (now - (long)back.Meta.EngineTimeUs) / 1000f;
            float generationMs = back.Meta.GenerationLatencyMs;
            exchange.Publish();
            lock (_statsLock)
            {
                _rate.Mark(now);
                if (latencyMs >= 0f && latencyMs < 60000f) _latency.Add(latencyMs);
                _generationMs = generationMs;
                _framesReceived++;
            }
            return more;
        }

        void OnError(BackendError error)
        {
            if (error.Code == ErrorCode.ShuttingDown)
            {
                // Not a fault: the backend is going away. The connection thread ends this connection at once
                // and reconnects with backoff; the last frame stays where the engine shows it.
                lock (_lock) _shutdownNotice = true;
                _wake.Set();
                return;
            }
            lock (_lock)
            {
                if (error.Fatal) _fatalError = error;
                else
                {
                    _lastError = error;
                    _errorCount++;
                }
            }
            if (error.Fatal) _wake.Set();
        }
    }
}
