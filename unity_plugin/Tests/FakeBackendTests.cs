using System;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>
    /// BackdropClient against a scripted backend on real libzmq and the real protobuf runtime
    /// (FakeBackend in tests/unity/unity_peers.py; the Hello's client label picks the script).
    /// </summary>
    [TestFixture]
    public class FakeBackendTests
    {
        const int FakeW = 64, FakeH = 36;
        BackdropClient _client;

        [TearDown]
        public void StopClient()
        {
            if (_client != null) _client.Dispose();
            _client = null;
        }

        BackdropClient Start(string label, FrameTransport transport = FrameTransport.Inline, Action<BackdropSettings> change = null)
        {
            BackdropSettings s = new BackdropSettings
            {
                Endpoint = TestEnv.Require(TestEnv.Fake),
                ClientLabel = label,
                Transport = transport,
                HelloTimeoutMs = 500,
                ReconnectMinDelayMs = 50,
                ReconnectMaxDelayMs = 200,
            };
            if (change != null) change(s);
            _client = new BackdropClient(s);
            _client.Start();
            return _client;
        }

        static void AwaitState(BackdropClient c, ConnectionState state, int timeoutMs = 5000)
        {
            bool reached = Wait.Until(() => c.Status.State == state, timeoutMs);
            Assert.IsTrue(reached, "expected " + state + ", still " + c.Status.State + ": " + c.Status.Detail);
        }

        static void AssertFakePixels(FrameBuffer f)
        {
            byte fill = (byte)(f.Meta.FrameSequence % 251);
            for (int y = 0; y < f.Height; y += 7)
            {
                for (int x = 0; x < f.Width; x++)
                {
                    int i = (y * f.Width + x) * 4;
                    Assert.AreEqual(fill, f.Pixels[i], "R at " + x + "," + y);
                    Assert.AreEqual((byte)x, f.Pixels[i + 1], "G at " + x + "," + y + " (a column index: rows are tightly packed)");
                }
            }
        }

        [Test]
        public void Hello_fields_reach_the_backend_and_poses_come_back_in_frames(
            [Values(FrameTransport.Inline, FrameTransport.SharedMemory)] FrameTransport transport)
        {
            BackdropClient c = Start("serve", transport, s =>
            {
                s.EngineName = "UnityTest";
                s.EngineVersion = "6000.0.1f1";
                s.SceneId = "harbour";
                s.Width = 640;
                s.Height = 360;
                s.Fps = 24f;
                s.Token = "t0k";
            });
            AwaitState(c, ConnectionState.Streaming);
            WelcomeInfo w = c.Status.Welcome;
            // The fake echoes the Hello it parsed with the real protobuf runtime.
            Assert.AreEqual("hello:UnityTest|6000.0.1f1|harbour|640x360@24|" +
                            (transport == FrameTransport.Inline ? "FRAME_TRANSPORT_INLINE" : "FRAME_TRANSPORT_SHARED_MEMORY") +
                            "|t0k|1.1", w.Generator); // this plugin speaks protocol 1.1
            Assert.AreEqual("harbour", w.SceneId);
            Assert.AreEqual(transport, c.Status.Transport);

            Vec3 position = new Vec3(-1.5f, 0.25f, -4f);
            Quat rotation = new Quat(-0.5f, 0.5f, 0.5f, 0.5f);
            long before = EngineClock.NowMicroseconds();
            FrameBuffer frame = null;
            bool got = Wait.Until(() =>
            {
                c.SubmitPose(position, rotation, 55f, 1.75f);
                System.Threading.Thread.Sleep(5);
                return c.TryTakeFrame(out frame);
            }, 5000);
            Assert.IsTrue(got, "no frame: " + c.Status.Detail);
            FrameMeta m = frame.Meta;
            Assert.AreEqual(position, m.Position);
            Assert.AreEqual(rotation, m.Rotation);
            Assert.AreEqual(55f, m.VerticalFovDeg);
            Assert.AreEqual(1.75f, m.Aspect);
            Assert.GreaterOrEqual((long)m.EngineTimeUs, before);
            Assert.GreaterOrEqual(m.ReceivedTimeUs, (long)m.EngineTimeUs);
            Assert.Greater(m.PoseSequence, 0UL);
            Assert.AreEqual(FakeW, frame.Width);
            Assert.AreEqual(FakeH, frame.Height);
            Assert.AreEqual(transport, m.Transport);
            AssertFakePixels(frame);
            ClientStatus status = c.Status;
            Assert.GreaterOrEqual(status.FramesReceived, 1L);
            Assert.Greater(status.LatencyP50Ms, 0f);
            Assert.Less(status.LatencyP95Ms, 1000f);
        }

        // The same table as tests/client/test_client_engine.py::test_welcome_protocol_versions.
        [TestCase("1.0", true)]
        [TestCase("1.7", true)]
        [TestCase("2.0", false)]
        [TestCase("0.0", false)]
        public void Welcome_protocol_versions(string version, bool ok)
        {
            BackdropClient c = Start("version:" + version);
            if (ok)
            {
                AwaitState(c, ConnectionState.Streaming);
                Assert.AreEqual(version, c.Status.Welcome.ProtocolText);
                return;
            }
            AwaitState(c, ConnectionState.Refused);
            StringAssert.Contains("protocol mismatch: this client speaks 1.1, the backend " + version, c.Status.Detail);
            System.Threading.Thread.Sleep(300);
            Assert.AreEqual(ConnectionState.Refused, c.Status.State, "a refusal is not retried by itself");
        }

        [Test]
        public void Refusals_that_retrying_cannot_fix_stop_until_asked()
        {
            BackdropClient c = Start("refuse:UNKNOWN_SCENE");
            AwaitState(c, ConnectionState.Refused);
            StringAssert.Contains("UnknownScene", c.Status.Detail);
            StringAssert.Contains("refused by the fake backend", c.Status.Detail);
            int attempts = c.Status.Attempts;
            System.Threading.Thread.Sleep(300);
            Assert.AreEqual(attempts, c.Status.Attempts, "no retry by itself");
            c.Reconnect(); // e.g. after the scene was imported: tries again at once
            Assert.IsTrue(Wait.Until(() => c.Status.Attempts == attempts + 1 && c.Status.State == ConnectionState.Refused, 3000),
                          "one more attempt, refused again: " + c.Status.Attempts + " " + c.Status.State);
        }

        [Test]
        public void Transient_refusals_are_retried_with_backoff()
        {
            BackdropClient c = Start("refuse:OVERLOADED");
            AwaitState(c, ConnectionState.Reconnecting);
            StringAssert.Contains("Overloaded", c.Status.Detail);
            StringAssert.Contains("retrying in", c.Status.Detail);
        }

        [Test]
        public void A_backend_that_never_welcomes_times_out_and_is_retried()
        {
            BackdropClient c = Start("silent");
            AwaitState(c, ConnectionState.Reconnecting);
            StringAssert.Contains("no Welcome", c.Status.Detail);
        }

        [Test]
        public void An_unreadable_ring_falls_back_to_inline_frames()
        {
            BackdropClient c = Start("ring-missing", FrameTransport.SharedMemory);
            AwaitState(c, ConnectionState.Streaming);
            Assert.AreEqual(FrameTransport.Inline, c.Status.Transport);
            StringAssert.Contains("inline: frame ring", c.Status.Detail);
            StringAssert.Contains("does not exist", c.Status.Detail);
            FrameBuffer f = Wait.NextFrame(c, Quat.Identity, 5000);
            Assert.AreEqual(FrameTransport.Inline, f.Meta.Transport);
            AssertFakePixels(f);
        }

        [Test]
        public void Without_the_fallback_an_unreadable_ring_is_refused()
        {
            BackdropClient c = Start("ring-missing", FrameTransport.SharedMemory, s => s.FallBackToInline = false);
            AwaitState(c, ConnectionState.Refused);
            StringAssert.Contains("needs the Inline transport", c.Status.Detail);
        }

        [Test]
        public void Unknown_fields_and_bodies_are_ignored()
        {
            BackdropClient c = Start("unknown-fields");
            AwaitState(c, ConnectionState.Streaming);
            Assert.AreEqual("fake", c.Status.Welcome.BackendVersion);
            FrameBuffer f = Wait.NextFrame(c, Quat.Identity, 5000);
            AssertFakePixels(f);
        }

        [Test]
        public void Non_fatal_errors_are_kept_and_the_session_lives_on()
        {
            BackdropClient c = Start("nonfatal-error");
            AwaitState(c, ConnectionState.Streaming);
            Wait.NextFrame(c, Quat.Identity, 5000);
            Assert.IsTrue(Wait.Until(() => c.Status.ErrorCount == 1, 2000));
            ClientStatus s = c.Status;
            Assert.AreEqual(ErrorCode.InvalidArgument, s.LastError.Code);
            Assert.AreEqual("pose.pose.rotation", s.LastError.Field);
            Assert.AreEqual(ConnectionState.Streaming, s.State);
        }

        [Test]
        public void A_fatal_timeout_reconnects_and_reapplies_the_playback_state()
        {
            BackdropClient c = Start("timeout-after:4");
            AwaitState(c, ConnectionState.Streaming);
            c.Pause();
            c.SetSpeed(0.5f);
            // The fake reports the clock commands of the session as digits: PAUSE (2), then SET_SPEED (4).
            FrameBuffer f = Wait.NextFrame(c, Quat.Identity, 5000, x => x.Meta.SceneTimeS == 24.0);
            Assert.AreEqual(0.5f, f.Meta.GenerationLatencyMs, "the fake reports the last speed here");
            string first = c.Status.Welcome.SessionId;
            Assert.IsTrue(Wait.Posing(c, () => c.Status.Reconnects >= 1 && c.Status.State == ConnectionState.Streaming, 8000),
                          "no reconnection: " + c.Status.Detail);
            Assert.AreNotEqual(first, c.Status.Welcome.SessionId);
            f = Wait.NextFrame(c, Quat.Identity, 5000);
            Assert.AreEqual(24.0, f.Meta.SceneTimeS, "the new session got PAUSE and SET_SPEED again");
            Assert.IsTrue(c.Paused);
            Assert.AreEqual(0.5f, c.Speed);
        }

        [Test]
        public void A_shutdown_notice_reconnects_at_once_and_is_not_an_error()
        {
            BackdropClient c = Start("shutdown-after:3", FrameTransport.Inline, settings =>
            {
                settings.ReconnectMinDelayMs = 400;
                settings.ReconnectMaxDelayMs = 800;
            });
            AwaitState(c, ConnectionState.Streaming);
            Wait.NextFrame(c, Quat.Identity, 5000);
            string first = c.Status.Welcome.SessionId;
            // The fake keeps the connection open and silent after its notice: only the notice ends the session
            // this soon (the silence check waits at least 5 s).
            Assert.IsTrue(Wait.Posing(c, () => c.Status.State == ConnectionState.Reconnecting, 2000),
                          "the notice did not start a reconnect: " + c.Status.State + ": " + c.Status.Detail);
            ClientStatus s = c.Status;
            StringAssert.StartsWith(BackdropClient.ShuttingDownStatus, s.Detail);
            StringAssert.StartsWith("backend shutting down - reconnecting", s.Detail);
            StringAssert.Contains("retrying in", s.Detail);
            Assert.AreEqual(0, s.ErrorCount, "not reported as a backend error");
            Assert.IsNull(s.LastError);
            FrameBuffer none;
            c.TryTakeFrame(out none); // a frame from before the notice may still be waiting
            System.Threading.Thread.Sleep(100);
            Assert.IsFalse(c.TryTakeFrame(out none), "no new frame meanwhile: the engine keeps showing the last one");
            Assert.IsTrue(Wait.Posing(c, () => c.Status.Reconnects >= 1, 5000), "did not reconnect: " + c.Status.Detail);
            Assert.AreNotEqual(first, c.Status.Welcome.SessionId);
        }

        [Test]
        public void Poses_are_rate_limited_to_the_session_fps()
        {
            BackdropClient c = Start("serve", FrameTransport.Inline, s => s.PosesPerFrame = 2f);
            AwaitState(c, ConnectionState.Streaming);
            long before = c.Status.PosesSent;
            System.Diagnostics.Stopwatch w = System.Diagnostics.Stopwatch.StartNew();
            while (w.ElapsedMilliseconds < 1000)
            {
                c.SubmitPose(new Vec3(), Quat.Identity, 60f, 0f); // a 1 kHz "engine"
                System.Threading.Thread.Sleep(1);
            }
            long sent = c.Status.PosesSent - before;
            Assert.LessOrEqual(sent, 2 * 30 + 10, "at most 2 poses per frame at 30 fps");
            Assert.GreaterOrEqual(sent, 30, "but not starved");
        }

        [Test]
        public void Nobody_listening_reports_how_to_start_the_backend()
        {
            System.Net.Sockets.TcpListener probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            probe.Start();
            int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            BackdropClient c = Start("", FrameTransport.Inline, s => s.Endpoint = "127.0.0.1:" + port);
            AwaitState(c, ConnectionState.Reconnecting);
            StringAssert.Contains("nobody listens at tcp://127.0.0.1:" + port, c.Status.Detail);
            StringAssert.Contains("starbridge serve", c.Status.Detail);
        }
    }
}
