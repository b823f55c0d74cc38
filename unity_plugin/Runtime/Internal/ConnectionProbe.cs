using System;
using System.Diagnostics;
using System.Globalization;

namespace StarBridge.Core
{
    /// <summary>What <see cref="ConnectionProbe.Run"/> found.</summary>
    public sealed class ProbeResult
    {
        public bool Ok;
        /// <summary>One line: what answered, or what failed and the likely fix.</summary>
        public string Message = "";
        /// <summary>The backend's Welcome, when it answered one.</summary>
        public WelcomeInfo Welcome;
        /// <summary>Connect to Welcome, milliseconds.</summary>
        public double ElapsedMs;
    }

    /// <summary>
    /// "Test connection": connects, says Hello with the given settings, waits for Welcome, checks the
    /// frame ring opens (shared memory), says Goodbye. Synchronous and bounded by the timeout: call it
    /// on a worker thread (the editor inspector does).
    /// </summary>
    public static class ConnectionProbe
    {
        public static ProbeResult Run(BackdropSettings settings, int timeoutMs)
        {
            ProbeResult result = new ProbeResult();
            Stopwatch watch = Stopwatch.StartNew();
            ZmtpConnection connection = null;
            string where = settings.Endpoint;
            try
            {
                settings.Validate();
                string host;
                int port;
                BackdropSettings.ParseEndpoint(settings.Endpoint, out host, out port);
                where = "tcp://" + host + ":" + port;
                // A fresh routing id: a ROUTER drops a connection whose id is still in use by a closing one.
                byte[] identity = System.Text.Encoding.ASCII.GetBytes("probe-" + Guid.NewGuid().ToString("N").Substring(0, 12));
                connection = ZmtpConnection.Connect(host, port, identity, timeoutMs, null);
                HelloRequest hello = new HelloRequest
                {
                    ProtocolMajor = settings.ProtocolMajor,
                    ProtocolMinor = settings.ProtocolMinor,
                    EngineName = settings.EngineName,
                    EngineVersion = settings.EngineVersion,
                    SceneId = settings.SceneId,
                    Width = (uint)settings.Width,
                    Height = (uint)settings.Height,
                    Fps = settings.Fps,
                    Transport = settings.Transport,
                    Token = settings.Token,
                    ClientLabel = "connection test",
                };
                byte[] buffer = new byte[ZmtpConnection.HeaderReserve + EngineCodec.HelloBytes(hello)];
                int end = EngineCodec.EncodeHello(buffer, ZmtpConnection.HeaderReserve, hello);
                connection.Send(buffer, ZmtpConnection.HeaderReserve, end - ZmtpConnection.HeaderReserve, false);

                WelcomeInfo welcome = AwaitAnswer(connection, timeoutMs, watch, where);
                result.Welcome = welcome;
                result.ElapsedMs = watch.Elapsed.TotalMilliseconds;
                string mismatch = ProtocolVersion.Check(settings.ProtocolMajor, settings.ProtocolMinor, welcome.ProtocolMajor, welcome.ProtocolMinor);
                string ring = "";
                if (mismatch == null && welcome.Transport == FrameTransport.SharedMemory)
                {
                    try
                    {
                        using (FrameRingReader.Open(welcome.SharedMemory != null ? welcome.SharedMemory.Path : "", welcome.SharedMemory, welcome.Width, welcome.Height)) { }
                        ring = ", shared memory OK";
                    }
                    catch (StarBridgeException e)
                    {
                        ring = ", but " + e.Message;
                    }
                }
                Goodbye(connection);
                if (mismatch != null)
                {
                    result.Message = mismatch;
                    return result;
                }
                result.Ok = ring.StartsWith(", but", StringComparison.Ordinal) == false;
                result.Message = string.Format(CultureInfo.InvariantCulture,
                    "{0} answered in {1:0} ms: StarBridge {2} (protocol {3}), scene '{4}' ({5:0.0} s), {6}x{7} at {8:0.#} fps, {9}{10}",
                    where, result.ElapsedMs, welcome.BackendVersion, welcome.ProtocolText, welcome.SceneId,
                    welcome.SceneDurationS, welcome.Width, welcome.Height, welcome.Fps, welcome.Generator, ring);
                return result;
            }
            catch (Exception e)
            {
                result.ElapsedMs = watch.Elapsed.TotalMilliseconds;
                System.Net.Sockets.SocketException socket = e as System.Net.Sockets.SocketException;
                if (socket != null && socket.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused)
                {
                    result.Message = "nobody listens at " + where + ": start the backend with `starbridge serve` (or check the address)";
                }
                else
                {
                    result.Message = e.Message;
                }
                return result;
            }
            finally
            {
                if (connection != null) connection.Dispose();
            }
        }

        static WelcomeInfo AwaitAnswer(ZmtpConnection connection, int timeoutMs, Stopwatch watch, string where)
        {
            byte[] envelope = new byte[BackdropClient.MaxEnvelopeBytes];
            FrameMeta frame = default(FrameMeta);
            while (true)
            {
                int left = timeoutMs - (int)watch.ElapsedMilliseconds;
                if (left <= 0) throw new StarBridgeException(ErrorCode.Timeout, "no Welcome from " + where + " within " + timeoutMs + " ms");
                connection.SetReceiveTimeout(left);
                bool more;
                long size;
                try
                {
                    connection.ReadFrameHeader(out more, out size);
                }
                catch (System.Net.Sockets.SocketException e)
                {
                    if (e.SocketErrorCode != System.Net.Sockets.SocketError.TimedOut &&
                        e.SocketErrorCode != System.Net.Sockets.SocketError.WouldBlock) throw;
                    throw new StarBridgeException(ErrorCode.Timeout, "no Welcome from " + where + " within " + timeoutMs + " ms: the backend is busy, or something else listens on that port");
                }
                if (size > envelope.Length) throw new StarBridgeException(ErrorCode.Malformed, "the backend sent a " + size + "-byte envelope");
                connection.ReadBody(envelope, 0, (int)size);
                while (more)
                {
                    long partSize;
                    connection.ReadFrameHeader(out more, out partSize);
                    connection.SkipBody(partSize);
                }
                WelcomeInfo welcome;
                BackendError error;
                BackendMessageKind kind = EngineCodec.DecodeBackend(envelope, 0, (int)size, ref frame, out welcome, out error);
                if (kind == BackendMessageKind.Welcome) return welcome;
                if (kind == BackendMessageKind.Error && error.Code == ErrorCode.ShuttingDown)
                {
                    throw new StarBridgeException(error.Code, "the backend at " + where + " is shutting down: try again in a moment");
                }
                if (kind == BackendMessageKind.Error && error.Fatal)
                {
                    throw new StarBridgeException(error.Code, "the backend refused the session (" + error.Code + "): " + error.Message, error.Field);
                }
            }
        }

        static void Goodbye(ZmtpConnection connection)
        {
            byte[] buffer = new byte[ZmtpConnection.HeaderReserve + 32];
            int end = EngineCodec.EncodeGoodbye(buffer, ZmtpConnection.HeaderReserve, "connection test");
            connection.Send(buffer, ZmtpConnection.HeaderReserve, end - ZmtpConnection.HeaderReserve, false);
            connection.ShutdownSend();
        }
    }
}
