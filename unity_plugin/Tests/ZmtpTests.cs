using System;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>The ZMTP 3.1 DEALER against real libzmq: a pyzmq ROUTER that echoes every message (tests/unity/unity_peers.py).</summary>
    [TestFixture]
    public class ZmtpTests
    {
        static ZmtpConnection ConnectEcho(string identity)
        {
            string host;
            int port;
            BackdropSettings.ParseEndpoint(TestEnv.Require(TestEnv.Echo), out host, out port);
            return ZmtpConnection.Connect(host, port, Encoding.ASCII.GetBytes(identity), 3000, null);
        }

        static void SendMessage(ZmtpConnection c, params byte[][] parts)
        {
            for (int i = 0; i < parts.Length; i++)
            {
                byte[] buffer = new byte[ZmtpConnection.HeaderReserve + parts[i].Length];
                Buffer.BlockCopy(parts[i], 0, buffer, ZmtpConnection.HeaderReserve, parts[i].Length);
                c.Send(buffer, ZmtpConnection.HeaderReserve, parts[i].Length, i < parts.Length - 1);
            }
        }

        static byte[][] ReceiveMessage(ZmtpConnection c)
        {
            System.Collections.Generic.List<byte[]> parts = new System.Collections.Generic.List<byte[]>();
            bool more = true;
            while (more)
            {
                long size;
                c.ReadFrameHeader(out more, out size);
                byte[] body = new byte[size];
                c.ReadBody(body, 0, (int)size);
                parts.Add(body);
            }
            return parts.ToArray();
        }

        static byte[] Pattern(int n, int seed)
        {
            byte[] b = new byte[n];
            for (int i = 0; i < n; i++) b[i] = (byte)(i * 31 + seed);
            return b;
        }

        [Test]
        public void The_handshake_declares_dealer_and_identity_to_libzmq()
        {
            using (ZmtpConnection c = ConnectEcho("sb-identity-1"))
            {
                Assert.AreEqual("ROUTER", c.PeerSocketType);
                StringAssert.StartsWith("3.", c.PeerVersion);
                SendMessage(c, Encoding.ASCII.GetBytes("hello"));
                byte[][] echo = ReceiveMessage(c);
                Assert.AreEqual(2, echo.Length);
                Assert.AreEqual("sb-identity-1", Encoding.ASCII.GetString(echo[0]), "the ROUTER routes by the Identity we sent in READY");
                Assert.AreEqual("hello", Encoding.ASCII.GetString(echo[1]));
            }
        }

        [Test]
        public void Multipart_messages_with_short_and_long_frames_round_trip()
        {
            using (ZmtpConnection c = ConnectEcho("sb-multipart"))
            {
                byte[][] sent = { new byte[0], Pattern(255, 1), Pattern(256, 2), Pattern(300000, 3) };
                SendMessage(c, sent);
                byte[][] echo = ReceiveMessage(c);
                Assert.AreEqual(sent.Length + 1, echo.Length);
                for (int i = 0; i < sent.Length; i++)
                {
                    CollectionAssert.AreEqual(sent[i], echo[i + 1], "part " + i + " (" + sent[i].Length + " bytes)");
                }
            }
        }

        [Test]
        public void Heartbeat_pings_are_answered_so_an_idle_connection_survives()
        {
            // The echo ROUTER pings every 100 ms and drops a peer silent for 400 ms after a ping.
            using (ZmtpConnection c = ConnectEcho("sb-heartbeat"))
            {
                Exception failure = null;
                byte[][] echo = null;
                Thread reader = new Thread(() =>
                {
                    try { echo = ReceiveMessage(c); }
                    catch (Exception e) { failure = e; }
                });
                reader.Start();
                Thread.Sleep(1500); // idle: only PING / PONG flow
                Assert.IsNull(failure, "the connection broke while idle: PINGs went unanswered");
                SendMessage(c, Encoding.ASCII.GetBytes("still here"));
                Assert.IsTrue(reader.Join(3000), "no echo after the idle period");
                Assert.IsNull(failure);
                Assert.AreEqual("still here", Encoding.ASCII.GetString(echo[1]));
            }
        }

        [Test]
        public void Nobody_listening_is_connection_refused()
        {
            TcpListener probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            SocketException e = Assert.Throws<SocketException>(() => ZmtpConnection.Connect("127.0.0.1", port, new byte[0], 2000, null));
            Assert.AreEqual(SocketError.ConnectionRefused, e.SocketErrorCode);
        }

        [Test]
        public void A_peer_that_is_not_zeromq_is_named_as_such()
        {
            TcpListener server = new TcpListener(IPAddress.Loopback, 0);
            server.Start();
            int port = ((IPEndPoint)server.LocalEndpoint).Port;
            Thread t = new Thread(() =>
            {
                using (Socket s = server.AcceptSocket())
                {
                    byte[] http = Encoding.ASCII.GetBytes("HTTP/1.1 400 Bad Request\r\n\r\n" + new string(' ', 64));
                    s.Send(http);
                    Thread.Sleep(200);
                }
            });
            t.Start();
            try
            {
                StarBridgeException e = Assert.Throws<StarBridgeException>(() => ZmtpConnection.Connect("127.0.0.1", port, new byte[0], 2000, null));
                StringAssert.Contains("not a ZeroMQ socket", e.Message);
            }
            finally
            {
                t.Join();
                server.Stop();
            }
        }

        [Test]
        public void A_silent_peer_times_out_with_a_hint()
        {
            TcpListener server = new TcpListener(IPAddress.Loopback, 0);
            server.Start(); // accepts (the kernel does) but never speaks
            int port = ((IPEndPoint)server.LocalEndpoint).Port;
            try
            {
                StarBridgeException e = Assert.Throws<StarBridgeException>(() => ZmtpConnection.Connect("127.0.0.1", port, new byte[0], 300, null));
                Assert.AreEqual(ErrorCode.Timeout, e.Code);
                StringAssert.Contains("engine port", e.Message);
            }
            finally
            {
                server.Stop();
            }
        }

        [Test]
        public void Identities_must_not_start_with_a_zero_byte()
        {
            Assert.Throws<ArgumentException>(() => ZmtpConnection.Connect("127.0.0.1", 1, new byte[] { 0, 1 }, 100, null));
        }
    }
}
