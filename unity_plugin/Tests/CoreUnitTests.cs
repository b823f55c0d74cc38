using System;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>Version check table, settings validation, statistics and the frame hand-off.</summary>
    [TestFixture]
    public class CoreUnitTests
    {
        // The same table as tests/client/test_client_engine.py::test_welcome_protocol_versions.
        [TestCase(1u, 0u, true)]
        [TestCase(1u, 7u, true)]
        [TestCase(2u, 0u, false)]
        [TestCase(0u, 0u, false)]
        public void Protocol_versions(uint major, uint minor, bool ok)
        {
            Assert.AreEqual("1.1", ProtocolVersion.Text, "this plugin speaks protocol 1.1 (ERROR_CODE_SHUTTING_DOWN, Welcome.session_secret)");
            string message = ProtocolVersion.Check(1, 0, major, minor);
            if (ok)
            {
                Assert.IsNull(message);
                return;
            }
            StringAssert.Contains("client speaks 1.0, the backend " + major + "." + minor, message);
            StringAssert.Contains("update the client or the backend", message);
        }

        [TestCase("127.0.0.1:50052", "127.0.0.1", 50052)]
        [TestCase("tcp://10.0.0.7:6000", "10.0.0.7", 6000)]
        [TestCase("render-box", "render-box", 50052)]
        [TestCase("TCP://[::1]:7", "::1", 7)]
        [TestCase("  localhost:1  ", "localhost", 1)]
        public void Endpoints_parse(string endpoint, string host, int port)
        {
            string h;
            int p;
            BackdropSettings.ParseEndpoint(endpoint, out h, out p);
            Assert.AreEqual(host, h);
            Assert.AreEqual(port, p);
        }

        [TestCase("")]
        [TestCase("host:0")]
        [TestCase("host:70000")]
        [TestCase("host:port")]
        [TestCase("::1")]
        [TestCase("tcp://*:50052")]
        public void Bad_endpoints_are_refused_with_an_example(string endpoint)
        {
            string h;
            int p;
            ArgumentException e = Assert.Throws<ArgumentException>(() => BackdropSettings.ParseEndpoint(endpoint, out h, out p));
            StringAssert.Contains("127.0.0.1:50052", e.Message);
        }

        [Test]
        public void Settings_errors_name_the_field_and_the_bound()
        {
            Func<Action<BackdropSettings>, string> fail = change =>
            {
                BackdropSettings s = new BackdropSettings();
                change(s);
                return Assert.Throws<ArgumentException>(() => new BackdropClient(s)).Message;
            };
            StringAssert.Contains("Width must be in [0, 8192]", fail(s => { s.Width = -1; s.Height = 10; }));
            StringAssert.Contains("both be 0", fail(s => { s.Width = 64; }));
            StringAssert.Contains("Fps must be in [0, 120]", fail(s => { s.Fps = 500f; }));
            StringAssert.Contains("Transport must be", fail(s => { s.Transport = FrameTransport.Unspecified; }));
            StringAssert.Contains("reconnect delays", fail(s => { s.ReconnectMaxDelayMs = 1; }));
        }

        [Test]
        public void Latency_percentiles_use_the_newest_samples()
        {
            LatencyWindow w = new LatencyWindow();
            float p50, p95;
            w.Percentiles(out p50, out p95);
            Assert.AreEqual(0f, p50);
            for (int i = 100; i >= 1; i--) w.Add(i);
            w.Percentiles(out p50, out p95);
            Assert.AreEqual(50f, p50);
            Assert.AreEqual(95f, p95);
            for (int i = 0; i < LatencyWindow.Capacity; i++) w.Add(7f); // the old samples roll out
            w.Percentiles(out p50, out p95);
            Assert.AreEqual(7f, p95);
        }

        [Test]
        public void Rate_meter_counts_the_last_second()
        {
            RateMeter m = new RateMeter();
            long t = 10000000;
            for (int i = 0; i < 31; i++) m.Mark(t + i * 33333L);
            Assert.AreEqual(30f, m.PerSecond(t + 30 * 33333L), 0.1f);
            Assert.AreEqual(0f, m.PerSecond(t + 5000000L), "nothing in the last second");
        }

        [Test]
        public void The_exchange_hands_over_the_newest_frame_without_allocating()
        {
            FrameExchange x = new FrameExchange(4, 2);
            FrameBuffer f;
            Assert.IsFalse(x.TryTake(out f));
            x.Back.Meta.FrameSequence = 1;
            x.Publish();
            x.Back.Meta.FrameSequence = 2;
            x.Publish();
            Assert.IsTrue(x.TryTake(out f));
            Assert.AreEqual(2UL, f.Meta.FrameSequence, "frame 1 was skipped: the newest wins");
            FrameBuffer taken = f;
            Assert.IsFalse(x.TryTake(out f));
            Assert.AreSame(taken, f, "without a new frame the consumer keeps its buffer");
            Assert.AreNotSame(taken, x.Back, "the producer never writes the consumer's buffer");
            long before = Allocations.CurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                x.Back.Meta.FrameSequence = (ulong)(10 + i);
                x.Publish();
                x.TryTake(out f);
            }
            Assert.AreEqual(0L, Allocations.CurrentThread() - before);
            Assert.AreEqual(1009UL, f.Meta.FrameSequence);
        }

        [Test]
        public void A_client_that_never_started_reports_stopped_and_stops_quietly()
        {
            BackdropClient c = new BackdropClient(new BackdropSettings());
            Assert.AreEqual(ConnectionState.Stopped, c.Status.State);
            FrameBuffer f;
            Assert.IsFalse(c.TryTakeFrame(out f));
            c.SubmitPose(new Vec3(), Quat.Identity, 60f, 0f);
            c.Dispose();
            c.Dispose();
            Assert.AreEqual(ConnectionState.Stopped, c.Status.State);
        }
    }
}
