using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;

namespace StarBridge.Core
{
    // The connection thread of BackdropClient: connect, Hello/Welcome (with the version check and the
    // shared-memory fallback), then poses, keep-alives and clock commands out until Stop or the session
    // ends; then a backoff delay and the next attempt. Refusals that retrying cannot fix wait for Reconnect().
    public sealed partial class BackdropClient
    {
        /// <summary>Whether the current connection reached Streaming (a later loss then retries at once).</summary>
        bool _streamedThisConnection;

        /// <summary>How the status starts while the backend is away after its shutdown notice.</summary>
        public const string ShuttingDownStatus = "backend shutting down - reconnecting";

        void ConnectionLoop()
        {
            int failures = 0;
            bool leaving = false; // the backend said it was shutting down and has not been back since
            while (!_stopRequested)
            {
                _reconnectRequested = false;
                lock (_lock) _attempts++;
                SetState(ConnectionState.Connecting, (leaving ? ShuttingDownStatus + ": " : "") + "connecting to " + Endpoint);
                string reason = null;
                bool refused = false;
                ZmtpConnection connection = null;
                _streamedThisConnection = false;
                try
                {
                    connection = ZmtpConnection.Connect(_host, _port, NewIdentity(), _settings.ConnectTimeoutMs, _stopEvent);
                    StartReceiving(connection);
                    RunSession(connection);
                }
                catch (RefusedException e)
                {
                    refused = true;
                    reason = e.Message;
                }
                catch (OperationCanceledException)
                {
                }
                catch (Exception e)
                {
                    reason = Describe(e);
                    StarBridgeException notice = e as StarBridgeException;
                    if (notice != null && notice.Code == ErrorCode.ShuttingDown) leaving = true;
                    else if (leaving && !_streamedThisConnection) reason = ShuttingDownStatus + ": " + reason;
                    else leaving = false;
                }
                finally
                {
                    EndConnection(connection);
                }
                if (_stopRequested) break;
                if (refused)
                {
                    leaving = false;
                    SetState(ConnectionState.Refused, reason);
                    while (!_stopRequested && !_reconnectRequested) _wake.WaitOne(250);
                    failures = 0;
                    continue;
                }
                if (_streamedThisConnection) failures = 0;
                int delay = BackoffMs(failures++);
                SetState(ConnectionState.Reconnecting,
                         reason + "; retrying in " + (delay / 1000.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + " s");
                long until = EngineClock.NowMicroseconds() + delay * 1000L;
                while (!_stopRequested && !_reconnectRequested)
                {
                    long left = until - EngineClock.NowMicroseconds();
                    if (left <= 0) break;
                    _wake.WaitOne((int)Math.Min(left / 1000 + 1, 250));
                }
            }
            SetState(ConnectionState.Stopped, "stopped");
        }

        /// <summary>Hello, Welcome, then poses out until Stop (returns) or the session ends (throws).</summary>
        void RunSession(ZmtpConnection connection)
        {
            FrameTransport transport = _settings.Transport;
            string note = "";
            WelcomeInfo welcome = SayHello(connection, transport);
            if (welcome == null) return;
            string ringFailure;
            lock (_lock) ringFailure = _ringFailure;
            if (ringFailure != null)
            {
                SendGoodbye(connection, "cannot read the frame ring");
                if (!_settings.FallBackToInline)
                {
                    throw new RefusedException(ringFailure + "; a backend on another machine needs the Inline transport");
                }
                transport = FrameTransport.Inline;
                note = " (inline: " + ringFailure + ")";
                welcome = SayHello(connection, transport);
                if (welcome == null) return;
            }
            StartStreaming(welcome, note);
            Stream(connection, welcome);
        }

        /// <summary>Sends Hello and waits for Welcome; null when stopped meanwhile. Throws when refused or lost.</summary>
        WelcomeInfo SayHello(ZmtpConnection connection, FrameTransport transport)
        {
            SetState(ConnectionState.Handshaking, "waiting for Welcome from " + Endpoint);
            lock (_lock)
            {
                _welcomeArrived = false;
                _pendingWelcome = null;
                _ringFailure = null;
                _fatalError = null;
            }
            HelloRequest hello = new HelloRequest
            {
                ProtocolMajor = _settings.ProtocolMajor,
                ProtocolMinor = _settings.ProtocolMinor,
                EngineName = _settings.EngineName,
                EngineVersion = _settings.EngineVersion,
                SceneId = _settings.SceneId,
                Width = (uint)_settings.Width,
                Height = (uint)_settings.Height,
                Fps = _settings.Fps,
                Transport = transport,
                Token = _settings.Token,
                ClientLabel = _settings.ClientLabel,
            };
            byte[] buffer = new byte[ZmtpConnection.HeaderReserve + EngineCodec.HelloBytes(hello)];
            int end = EngineCodec.EncodeHello(buffer, ZmtpConnection.HeaderReserve, hello);
            connection.Send(buffer, ZmtpConnection.HeaderReserve, end - ZmtpConnection.HeaderReserve, false);

            long deadline = EngineClock.NowMicroseconds() + _settings.HelloTimeoutMs * 1000L;
            while (true)
            {
                WelcomeInfo welcome = null;
                lock (_lock)
                {
                    ThrowIfEnded();
                    if (_welcomeArrived) welcome = _pendingWelcome;
                }
                if (welcome != null)
                {
                    string mismatch = ProtocolVersion.Check(_settings.ProtocolMajor, _settings.ProtocolMinor,
                                                            welcome.ProtocolMajor, welcome.ProtocolMinor);
                    if (mismatch != null)
                    {
                        SendGoodbye(connection, "protocol mismatch");
                        throw new RefusedException(mismatch);
                    }
                    return welcome;
                }
                if (_stopRequested)
                {
                    SendGoodbye(connection, _goodbyeReason);
                    return null;
                }
                long left = deadline - EngineClock.NowMicroseconds();
                if (left <= 0)
                {
                    throw new StarBridgeException(ErrorCode.Timeout,
                        "no Welcome from " + Endpoint + " within " + _settings.HelloTimeoutMs / 1000.0 +
                        " s: the backend is busy, or something else listens on that port");
                }
                _wake.WaitOne((int)Math.Min(left / 1000 + 1, 250));
            }
        }

        /// <summary>
        /// Throws when the receive thread saw a fatal Error, the backend's shutdown notice (code ShuttingDown: the
        /// loop reconnects at once), or lost the connection. Call under _lock.
        /// </summary>
        void ThrowIfEnded()
        {
            if (_shutdownNotice)
            {
                _shutdownNotice = false;
                throw new StarBridgeException(ErrorCode.ShuttingDown, ShuttingDownStatus + " to " + Endpoint);
            }
            if (_fatalError != null)
            {
                BackendError e = _fatalError;
                _fatalError = null;
                switch (e.Code)
                {
                    case ErrorCode.ProtocolMismatch:
                    case ErrorCode.UnknownScene:
                    case ErrorCode.Unauthenticated:
                    case ErrorCode.InvalidArgument:
                    case ErrorCode.Malformed:
                        throw new RefusedException("the backend refused the session (" + e.Code + "): " + e.Message);
                    default: // Timeout, Overloaded, NoSession, Internal, newer codes: try again later (ShuttingDown never gets here)
                        throw new StarBridgeException(e.Code, "the backend ended the session (" + e.Code + "): " + e.Message, e.Field);
                }
            }
            if (_receiveFailure != null)
            {
                Exception failure = _receiveFailure;
                _receiveFailure = null;
                throw new StarBridgeException(ErrorCode.Unspecified, Describe(failure), "endpoint", failure);
            }
        }

        void StartStreaming(WelcomeInfo welcome, string note)
        {
            lock (_lock)
            {
                if (_streamedOnce) _reconnects++;
                _streamedOnce = true;
                _welcome = welcome;
                _transportInUse = welcome.Transport;
                _state = ConnectionState.Streaming;
                _detail = "streaming " + welcome.Width + "x" + welcome.Height + " at " + welcome.Fps + " fps from " +
                          Endpoint + ", scene '" + welcome.SceneId + "', " + welcome.Generator + note;
                _timeCount = 0; // commands queued before this session: the playback state below covers them
            }
            _streamedThisConnection = true;
        }

        void Stream(ZmtpConnection connection, WelcomeInfo welcome)
        {
            float fps = welcome.Fps > 0f ? welcome.Fps : 30f;
            long minIntervalUs = (long)(1e6 / (fps * _settings.PosesPerFrame));
            float heartbeat = welcome.HeartbeatTimeoutS > 0f ? welcome.HeartbeatTimeoutS : 10f;
            long keepAliveUs = Math.Max(MinKeepAliveUs, Math.Min(MaxKeepAliveUs, (long)(heartbeat * 1e6 / 4)));
            long silenceUs = Math.Max(MinSilenceUs, (long)(heartbeat * 2e6));
            long lastSentUs = 0, firstPoseUs = 0;
            bool paused;
            float speed;
            lock (_lock)
            {
                paused = _paused;
                speed = _speed;
            }
            if (paused) SendTime(connection, TimeAction.Pause, 0.0, 0f);
            if (speed != 1f) SendTime(connection, TimeAction.SetSpeed, 0.0, speed);

            while (true)
            {
                if (_stopRequested)
                {
                    SendGoodbye(connection, _goodbyeReason);
                    return;
                }
                int commands;
                PoseSample pose = default(PoseSample);
                bool sendPose = false;
                long now = EngineClock.NowMicroseconds();
                lock (_lock)
                {
                    ThrowIfEnded();
                    commands = _timeCount;
                    Array.Copy(_timeQueue, _timeOut, commands);
                    _timeCount = 0;
                    if (_posePending && now - lastSentUs >= minIntervalUs)
                    {
                        pose = _pose;
                        _posePending = false;
                        sendPose = true;
                    }
                    else if (_haveLastPose && now - lastSentUs >= keepAliveUs)
                    {
                        pose = _lastPose; // the camera has not moved: say so again, stamped now
                        pose.EngineTimeUs = now;
                        sendPose = true;
                    }
                    if (sendPose)
                    {
                        _lastPose = pose;
                        _haveLastPose = true;
                        _poseSequence++;
                        _posesSent++;
                    }
                }
                for (int i = 0; i < commands; i++) SendTime(connection, _timeOut[i].Action, _timeOut[i].TimeS, _timeOut[i].Speed);
                if (sendPose)
                {
                    int end = EngineCodec.EncodePose(_poseBuffer, ZmtpConnection.HeaderReserve, _poseSequence,
                                                     (ulong)pose.EngineTimeUs, pose.Position, pose.Rotation,
                                                     pose.VerticalFovDeg, pose.Aspect);
                    connection.Send(_poseBuffer, ZmtpConnection.HeaderReserve, end - ZmtpConnection.HeaderReserve, false);
                    lastSentUs = now;
                    if (firstPoseUs == 0) firstPoseUs = now;
                }
                // A backend that stopped answering while we send poses is gone (hung, or the network is).
                long heard = Math.Max(Interlocked.Read(ref _lastReceiveUs), firstPoseUs);
                if (firstPoseUs != 0 && now - heard > silenceUs)
                {
                    throw new StarBridgeException(ErrorCode.Timeout,
                        "no message from the backend at " + Endpoint + " for " + (now - heard) / 1000000 + " s", "endpoint");
                }
                long waitUs = keepAliveUs - (now - lastSentUs);
                bool pending;
                lock (_lock) pending = _posePending;
                if (pending) waitUs = Math.Min(waitUs, minIntervalUs - (now - lastSentUs));
                _wake.WaitOne((int)Math.Max(1, Math.Min(250, waitUs / 1000)));
            }
        }

        void SendTime(ZmtpConnection connection, TimeAction action, double timeS, float speed)
        {
            int end = EngineCodec.EncodeTime(_timeBuffer, ZmtpConnection.HeaderReserve, action, timeS, speed);
            connection.Send(_timeBuffer, ZmtpConnection.HeaderReserve, end - ZmtpConnection.HeaderReserve, false);
        }

        void SendGoodbye(ZmtpConnection connection, string reason)
        {
            try
            {
                byte[] buffer = new byte[ZmtpConnection.HeaderReserve + 16 + 4 * (reason ?? "").Length];
                int end = EngineCodec.EncodeGoodbye(buffer, ZmtpConnection.HeaderReserve, reason);
                connection.Send(buffer, ZmtpConnection.HeaderReserve, end - ZmtpConnection.HeaderReserve, false);
            }
            catch (Exception)
            {
                // the backend is gone already: nothing to say goodbye to
            }
        }

        void SetState(ConnectionState state, string detail)
        {
            lock (_lock)
            {
                if (_stopRequested && state != ConnectionState.Stopped) return;
                _state = state;
                _detail = detail;
            }
        }

        int BackoffMs(int failures)
        {
            double delay = _settings.ReconnectMinDelayMs * Math.Pow(2.0, Math.Min(failures, 16));
            delay = Math.Min(delay, _settings.ReconnectMaxDelayMs);
            double jitter;
            lock (_random) jitter = 0.8 + 0.4 * _random.NextDouble(); // spread reconnecting engines apart
            return (int)Math.Max(1.0, Math.Min(_settings.ReconnectMaxDelayMs, delay * jitter));
        }

        byte[] NewIdentity()
        {
            byte[] id = new byte[12];
            id[0] = (byte)'s';
            id[1] = (byte)'b';
            id[2] = (byte)'-';
            lock (_random)
            {
                for (int i = 3; i < id.Length; i++) id[i] = (byte)"0123456789abcdef"[_random.Next(16)];
            }
            return id;
        }

        string Describe(Exception e)
        {
            SocketException socket = e as SocketException;
            if (socket == null && e.InnerException != null) socket = e.InnerException as SocketException;
            if (socket != null && socket.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return "nobody listens at " + Endpoint + ": start the backend with `starbridge serve` (or check the address)";
            }
            if (e is StarBridgeException) return e.Message;
            if (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                return "lost the backend at " + Endpoint + ": " + e.Message;
            }
            return "connection to " + Endpoint + " failed: " + e.GetType().Name + ": " + e.Message;
        }
    }
}
