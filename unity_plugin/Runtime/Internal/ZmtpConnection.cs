using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace StarBridge.Core
{
    /// <summary>
    /// A minimal ZMTP 3.1 DEALER peer over TCP: enough of the ZeroMQ Message Transport Protocol
    /// (37/ZMTP, https://rfc.zeromq.org/spec/37/; 23/ZMTP for 3.0) to talk to the backend's libzmq
    /// ROUTER without a native library.
    ///
    /// <para>Connection (37/ZMTP "Formal Grammar"): both peers send a 64-octet greeting: signature
    /// %xFF, 8 octets padding, %x7F; version 3.1 (%x03 %x01); the security mechanism, "NULL" padded
    /// with zeros to 20 octets; as-server %x00; 31 octets filler. With the NULL mechanism each peer
    /// then sends a READY command whose metadata carries "Socket-Type" ("DEALER") and "Identity"
    /// (the routing id the ROUTER uses; ours is fresh per connection, so a reconnect never collides
    /// with a half-closed old connection). A peer refusing us sends an ERROR command instead.</para>
    ///
    /// <para>Traffic: frames of one flags octet (bit 0 MORE: another frame of the same message follows;
    /// bit 1 LONG: the size is 8 octets, network byte order, instead of 1; bit 2 COMMAND) then the
    /// size and the body. A multipart message is its frames with MORE set on all but the last.
    /// Commands may arrive between messages: PING (ZMTP 3.1 heartbeats, sent by libzmq when
    /// ZMQ_HEARTBEAT_IVL is set) is answered with PONG echoing its context; ERROR ends the
    /// connection; others are ignored.</para>
    ///
    /// <para>Threading: one thread reads (<see cref="ReadFrameHeader"/>, <see cref="ReadBody"/>),
    /// any thread sends (sends are serialised by a lock). Nothing allocates after the handshake.</para>
    /// </summary>
    public sealed class ZmtpConnection : IDisposable
    {
        /// <summary>Bytes a caller of <see cref="Send"/> must leave free before the body for the frame header.</summary>
        public const int HeaderReserve = 9;
        /// <summary>Greeting size in octets.</summary>
        public const int GreetingBytes = 64;
        /// <summary>How long a stalled send may take before the connection counts as lost.</summary>
        public const int SendTimeoutMs = 2000;

        const byte FlagMore = 1, FlagLong = 2, FlagCommand = 4;
        const int MaxCommandBytes = 64 * 1024;

        readonly Socket _socket;
        readonly object _sendLock = new object();
        readonly byte[] _header = new byte[9];
        readonly byte[] _command = new byte[512];
        readonly byte[] _pong = new byte[2 + 5 + 16]; // short frame header, %d4 "PONG", context
        readonly byte[] _skip = new byte[4096];
        volatile bool _closed;

        ZmtpConnection(Socket socket)
        {
            _socket = socket;
        }

        /// <summary>The peer's socket type from its READY command, e.g. "ROUTER".</summary>
        public string PeerSocketType { get; private set; }

        /// <summary>The routing id this connection declared in READY.</summary>
        public byte[] Identity { get; private set; }

        /// <summary>The peer's ZMTP version from its greeting, e.g. "3.1".</summary>
        public string PeerVersion { get; private set; }

        /// <summary>
        /// Connects, exchanges greetings and READY commands. Throws StarBridgeException (Timeout) when
        /// nobody answers within <paramref name="timeoutMs"/>, IOException/SocketException when the
        /// connection is refused or breaks, OperationCanceledException when <paramref name="cancel"/> fires.
        /// </summary>
        public static ZmtpConnection Connect(string host, int port, byte[] identity, int timeoutMs, WaitHandle cancel)
        {
            if (identity == null || identity.Length > 255) throw new ArgumentException("identity must be 0 to 255 bytes", "identity");
            if (identity.Length > 0 && identity[0] == 0) throw new ArgumentException("identity must not start with a zero byte (reserved by ZeroMQ)", "identity");
            string where = "tcp://" + host + ":" + port;
            IPAddress address = Resolve(host);
            Socket socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.NoDelay = true;
                IAsyncResult pending = socket.BeginConnect(new IPEndPoint(address, port), null, null);
                WaitHandle[] waits = cancel != null
                    ? new WaitHandle[] { pending.AsyncWaitHandle, cancel }
                    : new WaitHandle[] { pending.AsyncWaitHandle };
                int which = WaitHandle.WaitAny(waits, timeoutMs);
                if (which == WaitHandle.WaitTimeout)
                {
                    throw new StarBridgeException(ErrorCode.Timeout,
                        "no answer from " + where + " within " + timeoutMs + " ms: is `starbridge serve` running there?", "endpoint");
                }
                if (which == 1) throw new OperationCanceledException("connect to " + where + " cancelled");
                socket.EndConnect(pending);
                socket.ReceiveTimeout = timeoutMs;
                socket.SendTimeout = timeoutMs;
                ZmtpConnection connection = new ZmtpConnection(socket);
                try
                {
                    connection.Handshake(identity);
                }
                catch (SocketException e)
                {
                    if (e.SocketErrorCode != SocketError.TimedOut && e.SocketErrorCode != SocketError.WouldBlock) throw;
                    throw new StarBridgeException(ErrorCode.Timeout,
                        "no ZeroMQ handshake from " + where + " within " + timeoutMs + " ms: is that the StarBridge engine port (default 50052)?", "endpoint", e);
                }
                socket.ReceiveTimeout = 0; // the reader thread blocks; Close() wakes it
                socket.SendTimeout = SendTimeoutMs;
                return connection;
            }
            catch
            {
                socket.Close();
                throw;
            }
        }

        static IPAddress Resolve(string host)
        {
            IPAddress address;
            if (IPAddress.TryParse(host, out address)) return address;
            IPAddress[] all = Dns.GetHostAddresses(host);
            foreach (IPAddress a in all)
            {
                if (a.AddressFamily == AddressFamily.InterNetwork) return a; // the backend binds IPv4 by default
            }
            if (all.Length == 0) throw new StarBridgeException(ErrorCode.InvalidArgument, "host name " + host + " does not resolve", "endpoint");
            return all[0];
        }

        void Handshake(byte[] identity)
        {
            // 1. Greetings. Ours goes out whole; libzmq sends its own in two steps, which we read in two.
            byte[] greeting = new byte[GreetingBytes];
            greeting[0] = 0xFF;
            greeting[9] = 0x7F;
            greeting[10] = 3;
            greeting[11] = 1;
            Encoding.ASCII.GetBytes("NULL", 0, 4, greeting, 12);
            SendAll(greeting, 0, GreetingBytes);

            byte[] peer = new byte[GreetingBytes];
            ReadExactly(peer, 0, 11);
            if (peer[0] != 0xFF || peer[9] != 0x7F)
            {
                throw Protocol("the peer is not a ZeroMQ socket (bad greeting signature); check the address and port");
            }
            if (peer[10] < 3)
            {
                throw Protocol("the peer speaks ZMTP " + peer[10] + ".x; StarBridge needs ZMTP 3 (libzmq 4 or newer)");
            }
            ReadExactly(peer, 11, GreetingBytes - 11);
            PeerVersion = peer[10] + "." + peer[11];
            string mechanism = Encoding.ASCII.GetString(peer, 12, 20).TrimEnd('\0');
            if (mechanism != "NULL")
            {
                throw Protocol("the peer uses the " + mechanism + " security mechanism; StarBridge speaks NULL only");
            }

            // 2. READY with our metadata.
            Identity = (byte[])identity.Clone();
            byte[] ready = new byte[HeaderReserve + 64 + identity.Length];
            int p = HeaderReserve;
            p = PutShortString(ready, p, "READY");
            p = PutProperty(ready, p, "Socket-Type", Encoding.ASCII.GetBytes("DEALER"));
            p = PutProperty(ready, p, "Identity", identity);
            SendFrame(ready, HeaderReserve, p - HeaderReserve, FlagCommand);

            // 3. The peer's READY (or ERROR).
            bool more;
            long size;
            byte flags = ReadRawHeader(out more, out size);
            if ((flags & FlagCommand) == 0) throw Protocol("the peer sent a message before its READY command");
            if (size > MaxCommandBytes) throw Protocol("the peer's READY command is " + size + " bytes");
            byte[] body = new byte[size];
            ReadExactly(body, 0, (int)size);
            string name = CommandName(body, (int)size);
            if (name == "ERROR") throw Protocol("the peer refused the connection: " + ErrorReason(body, (int)size));
            if (name != "READY") throw Protocol("expected READY from the peer, got " + name);
            PeerSocketType = ReadProperty(body, (int)size, "Socket-Type") ?? "";
            if (PeerSocketType != "ROUTER" && PeerSocketType != "DEALER" && PeerSocketType != "REP")
            {
                throw Protocol("the peer is a " + PeerSocketType + " socket; a DEALER talks to ROUTER, DEALER or REP");
            }
        }

        // ------------------------------------------------------------------ sending

        /// <summary>
        /// Sends one frame whose body is <c>buffer[bodyOffset .. bodyOffset + bodyLength)</c>; the
        /// <see cref="HeaderReserve"/> bytes before it are overwritten with the frame header, so header
        /// and body leave in one system call. <paramref name="more"/>: another frame of this message follows.
        /// </summary>
        public void Send(byte[] buffer, int bodyOffset, int bodyLength, bool more)
        {
            if (bodyOffset < HeaderReserve) throw new ArgumentException("leave HeaderReserve bytes before the body", "bodyOffset");
            SendFrame(buffer, bodyOffset, bodyLength, more ? FlagMore : (byte)0);
        }

        void SendFrame(byte[] buffer, int bodyOffset, int bodyLength, byte flags)
        {
            int start;
            if (bodyLength <= 255)
            {
                start = bodyOffset - 2;
                buffer[start] = flags;
                buffer[start + 1] = (byte)bodyLength;
            }
            else
            {
                start = bodyOffset - 9;
                buffer[start] = (byte)(flags | FlagLong);
                ulong size = (ulong)bodyLength;
                for (int i = 0; i < 8; i++) buffer[start + 1 + i] = (byte)(size >> (56 - 8 * i));
            }
            SendAll(buffer, start, bodyOffset + bodyLength - start);
        }

        void SendAll(byte[] buffer, int offset, int count)
        {
            lock (_sendLock)
            {
                while (count > 0)
                {
                    int n = _socket.Send(buffer, offset, count, SocketFlags.None);
                    if (n <= 0) throw new IOException("the connection closed while sending");
                    offset += n;
                    count -= n;
                }
            }
        }

        // ------------------------------------------------------------------ receiving

        /// <summary>
        /// Reads the next message frame's header, answering and skipping commands on the way.
        /// <paramref name="more"/>: another frame of the same message follows this one. The caller then
        /// reads or skips exactly <paramref name="size"/> body bytes.
        /// </summary>
        public void ReadFrameHeader(out bool more, out long size)
        {
            while (true)
            {
                byte flags = ReadRawHeader(out more, out size);
                if ((flags & FlagCommand) == 0) return;
                HandleCommand(size);
            }
        }

        /// <summary>Reads exactly <paramref name="count"/> body bytes into <paramref name="buffer"/>.</summary>
        public void ReadBody(byte[] buffer, int offset, int count) { ReadExactly(buffer, offset, count); }

        /// <summary>Reads and discards <paramref name="count"/> body bytes.</summary>
        public void SkipBody(long count)
        {
            while (count > 0)
            {
                int n = (int)Math.Min(count, _skip.Length);
                ReadExactly(_skip, 0, n);
                count -= n;
            }
        }

        byte ReadRawHeader(out bool more, out long size)
        {
            ReadExactly(_header, 0, 2);
            byte flags = _header[0];
            more = (flags & FlagMore) != 0;
            if ((flags & FlagLong) == 0)
            {
                size = _header[1];
                return flags;
            }
            ReadExactly(_header, 2, 7);
            ulong s = 0;
            for (int i = 1; i < 9; i++) s = (s << 8) | _header[i];
            if (s > long.MaxValue) throw Protocol("frame size " + s + " is absurd");
            size = (long)s;
            return flags;
        }

        void HandleCommand(long size)
        {
            if (size > _command.Length)
            {
                SkipBody(size); // a large command we do not use (e.g. metadata-heavy); ignore it
                return;
            }
            int n = (int)size;
            ReadExactly(_command, 0, n);
            if (n < 1 || _command[0] + 1 > n) throw Protocol("malformed command frame");
            int nameLength = _command[0];
            if (IsName(_command, "PING"))
            {
                // ping = %d4 "PING" ping-ttl(2) ping-context(0..16); pong = %d4 "PONG" ping-context
                int contextLength = Math.Max(0, Math.Min(16, n - 1 - nameLength - 2));
                lock (_sendLock)
                {
                    const int p = 2; // the body starts after a short frame header
                    _pong[p] = 4;
                    _pong[p + 1] = (byte)'P'; _pong[p + 2] = (byte)'O'; _pong[p + 3] = (byte)'N'; _pong[p + 4] = (byte)'G';
                    Buffer.BlockCopy(_command, 1 + nameLength + 2, _pong, p + 5, contextLength);
                    SendFrame(_pong, p, 5 + contextLength, FlagCommand);
                }
            }
            else if (IsName(_command, "ERROR"))
            {
                throw Protocol("the peer closed the connection: " + ErrorReason(_command, n));
            }
            // READY again, SUBSCRIBE, CANCEL, PONG, JOIN, LEAVE: nothing a DEALER needs.
        }

        static bool IsName(byte[] body, string name)
        {
            if (body[0] != name.Length) return false;
            for (int i = 0; i < name.Length; i++)
            {
                if (body[1 + i] != name[i]) return false;
            }
            return true;
        }

        void ReadExactly(byte[] buffer, int offset, int count)
        {
            while (count > 0)
            {
                int n = _socket.Receive(buffer, offset, count, SocketFlags.None);
                if (n <= 0) throw new IOException("the peer closed the connection");
                offset += n;
                count -= n;
            }
        }

        // ------------------------------------------------------------------ command helpers

        static int PutShortString(byte[] buffer, int p, string s)
        {
            buffer[p++] = (byte)s.Length;
            return p + Encoding.ASCII.GetBytes(s, 0, s.Length, buffer, p);
        }

        static int PutProperty(byte[] buffer, int p, string name, byte[] value)
        {
            p = PutShortString(buffer, p, name);
            int n = value.Length;
            buffer[p++] = (byte)(n >> 24);
            buffer[p++] = (byte)(n >> 16);
            buffer[p++] = (byte)(n >> 8);
            buffer[p++] = (byte)n;
            Buffer.BlockCopy(value, 0, buffer, p, n);
            return p + n;
        }

        static string CommandName(byte[] body, int size)
        {
            if (size < 1 || body[0] + 1 > size) throw Protocol("malformed command frame");
            return Encoding.ASCII.GetString(body, 1, body[0]);
        }

        static string ErrorReason(byte[] body, int size)
        {
            int p = 1 + body[0];
            if (p >= size) return "(no reason given)";
            int n = Math.Min(body[p], size - p - 1);
            return Encoding.ASCII.GetString(body, p + 1, n);
        }

        /// <summary>The value of a metadata property in a READY body (names are case-insensitive); null if absent.</summary>
        static string ReadProperty(byte[] body, int size, string wanted)
        {
            int p = 1 + body[0];
            while (p < size)
            {
                int nameLength = body[p++];
                if (p + nameLength + 4 > size) throw Protocol("malformed READY metadata");
                string name = Encoding.ASCII.GetString(body, p, nameLength);
                p += nameLength;
                int valueLength = body[p] << 24 | body[p + 1] << 16 | body[p + 2] << 8 | body[p + 3];
                p += 4;
                if (valueLength < 0 || p + valueLength > size) throw Protocol("malformed READY metadata");
                if (string.Equals(name, wanted, StringComparison.OrdinalIgnoreCase))
                {
                    return Encoding.ASCII.GetString(body, p, valueLength);
                }
                p += valueLength;
            }
            return null;
        }

        static StarBridgeException Protocol(string what)
        {
            return new StarBridgeException(ErrorCode.Malformed, "ZMTP: " + what, "endpoint");
        }

        // ------------------------------------------------------------------ lifetime

        public bool IsClosed { get { return _closed; } }

        /// <summary>How long a read may block (0: forever). The connection's reader uses 0 and is woken by Dispose.</summary>
        public void SetReceiveTimeout(int milliseconds) { _socket.ReceiveTimeout = milliseconds; }

        /// <summary>
        /// Sends FIN after everything queued, so a last message (Goodbye) reaches the peer before the
        /// connection closes; reads still work until the peer closes its side.
        /// </summary>
        public void ShutdownSend()
        {
            if (_closed) return;
            try { lock (_sendLock) _socket.Shutdown(SocketShutdown.Send); }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
        }

        /// <summary>Closes the socket; a thread blocked in a read wakes with an exception. Idempotent.</summary>
        public void Dispose()
        {
            if (_closed) return;
            _closed = true;
            try { _socket.Shutdown(SocketShutdown.Both); }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
            _socket.Close();
        }
    }
}
