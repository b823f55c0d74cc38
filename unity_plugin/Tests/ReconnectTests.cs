using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>
    /// A backend restart needs no action in the engine (docs/architecture.md §4): the tests run a real
    /// `starbridge serve` process, kill it (SIGKILL: no Goodbye, a stale ring file left behind) or stop it
    /// (SIGTERM: it says SHUTTING_DOWN first), start it again on the same port, and watch the client keep its
    /// last frame, say why, and come back by itself. And a client with default settings takes the size and
    /// rate the backend was started with.
    /// </summary>
    [TestFixture]
    public class ReconnectTests
    {
        static int FreePort()
        {
            TcpListener l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        static Process Serve(string python, string store, int grpcPort, int enginePort, string size = "--width 128 --height 72")
        {
            ProcessStartInfo info = new ProcessStartInfo(python,
                "-m starbridge.cli --store \"" + store + "\" serve --grpc-port " + grpcPort + " --engine-port " + enginePort +
                " --heartbeat-timeout 2 " + size)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                CreateNoWindow = true,
            };
            Process p = Process.Start(info);
            p.OutputDataReceived += (sender, e) => { }; // drain, so a full pipe never stalls the backend
            p.ErrorDataReceived += (sender, e) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return p;
        }

        static void Kill(Process p)
        {
            if (p == null) return;
            try
            {
                if (!p.HasExited) p.Kill();
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }

        /// <summary>SIGTERM, as a service manager stops the backend (it then tells every session first).</summary>
        static void Terminate(Process p)
        {
            using (Process kill = Process.Start(new ProcessStartInfo("kill", "-TERM " + p.Id) { UseShellExecute = false }))
            {
                kill.WaitForExit(5000);
            }
        }

        [Test]
        public void Default_settings_take_the_size_and_rate_the_backend_was_started_with()
        {
            string python = TestEnv.Require(TestEnv.Python);
            string store = TestEnv.Require(TestEnv.Store);
            int grpcPort = FreePort(), enginePort = FreePort();
            Process backend = Serve(python, store, grpcPort, enginePort, "--width 320 --height 180 --fps 20");
            BackdropSettings settings = new BackdropSettings { Endpoint = "127.0.0.1:" + enginePort };
            Assert.AreEqual(0, settings.Width, "0: the backend's default");
            Assert.AreEqual(0, settings.Height);
            Assert.AreEqual(0f, settings.Fps);
            BackdropClient client = new BackdropClient(settings);
            try
            {
                client.Start();
                FrameBuffer frame = Wait.NextFrame(client, Quat.Identity, 20000);
                WelcomeInfo w = client.Status.Welcome;
                Assert.AreEqual(320, w.Width, "starbridge serve --width");
                Assert.AreEqual(180, w.Height, "starbridge serve --height");
                Assert.AreEqual(20f, w.Fps, "starbridge serve --fps");
                Assert.AreEqual(320, frame.Width, "frames have the size Welcome agreed");
                Assert.AreEqual(180, frame.Height);
                StringAssert.Contains("streaming 320x180 at 20 fps", client.Status.Detail);
            }
            finally
            {
                client.Dispose();
                Kill(backend);
            }
        }

        [Test]
        public void A_stopping_backend_says_so_and_the_client_reconnects_when_it_is_back()
        {
            string python = TestEnv.Require(TestEnv.Python);
            string store = TestEnv.Require(TestEnv.Store);
            int grpcPort = FreePort(), enginePort = FreePort();
            Process backend = Serve(python, store, grpcPort, enginePort);
            BackdropClient client = new BackdropClient(new BackdropSettings
            {
                Endpoint = "127.0.0.1:" + enginePort,
                Transport = FrameTransport.SharedMemory,
                ReconnectMinDelayMs = 100,
                ReconnectMaxDelayMs = 500,
            });
            try
            {
                client.Start();
                Wait.NextFrame(client, Quat.Identity, 20000);
                string firstSession = client.Status.Welcome.SessionId;

                Terminate(backend);
                // Needs the backend's side of protocol 1.1 (server/app.py: the SHUTTING_DOWN notice on stop).
                Assert.IsTrue(Wait.Posing(client, () => client.Status.State == ConnectionState.Reconnecting, 5000),
                              "the stop was not noticed: " + client.Status.State + ": " + client.Status.Detail);
                // A frame that arrived before the notice may still wait untaken; the engine takes it as usual.
                // After the notice nothing more may come (the backend sends no frame after its closing message).
                FrameBuffer none;
                client.TryTakeFrame(out none);
                ClientStatus s = client.Status;
                StringAssert.StartsWith(BackdropClient.ShuttingDownStatus, s.Detail,
                                        "the backend's SHUTTING_DOWN notice (protocol 1.1) should say why, not a lost connection");
                Assert.AreEqual(0, s.ErrorCount, "a stopping backend is not a backend error");
                Assert.IsNull(s.LastError);
                Assert.IsTrue(backend.WaitForExit(15000), "starbridge serve did not exit on SIGTERM");
                Kill(backend);
                backend = null;
                Assert.IsFalse(client.TryTakeFrame(out none), "no new frame while the backend is gone: the engine keeps its last one");
                Assert.IsTrue(Wait.Posing(client, () => client.Status.State == ConnectionState.Reconnecting &&
                                                        client.Status.Detail.Contains("nobody listens"), 5000),
                              "retrying: " + client.Status.Detail);
                StringAssert.StartsWith(BackdropClient.ShuttingDownStatus, client.Status.Detail, "still says why the backend went away");

                backend = Serve(python, store, grpcPort, enginePort);
                Assert.IsTrue(Wait.Posing(client, () => client.Status.State == ConnectionState.Streaming, 20000),
                              "did not reconnect: " + client.Status.Detail);
                Assert.AreNotEqual(firstSession, client.Status.Welcome.SessionId);
                Assert.AreEqual(1, client.Status.Reconnects);
                Wait.NextFrame(client, Quat.Identity, 10000);
                Console.WriteLine("stop: reconnected after SIGTERM: " + client.Status.Detail);
            }
            finally
            {
                client.Dispose();
                Kill(backend);
            }
        }

        [Test]
        public void The_client_survives_a_backend_restart_on_its_own()
        {
            string python = TestEnv.Require(TestEnv.Python);
            string store = TestEnv.Require(TestEnv.Store);
            int grpcPort = FreePort(), enginePort = FreePort();
            Process backend = Serve(python, store, grpcPort, enginePort);
            BackdropClient client = new BackdropClient(new BackdropSettings
            {
                Endpoint = "127.0.0.1:" + enginePort,
                Transport = FrameTransport.SharedMemory,
                ReconnectMinDelayMs = 100,
                ReconnectMaxDelayMs = 500,
            });
            try
            {
                client.Start();
                FrameBuffer before = Wait.NextFrame(client, Quat.Identity, 20000);
                string firstSession = client.Status.Welcome.SessionId;
                Assert.AreEqual(0, client.Status.Reconnects);

                Kill(backend);
                backend = null;
                Assert.IsTrue(Wait.Posing(client, () => client.Status.State == ConnectionState.Reconnecting, 5000),
                              "the loss was not noticed: " + client.Status.State + ": " + client.Status.Detail);
                StringAssert.Contains("127.0.0.1:" + enginePort, client.Status.Detail);
                StringAssert.Contains("retrying in", client.Status.Detail);
                // Frames that arrived before the loss may wait untaken (the client publishes on its own thread,
                // which has now moved on to Reconnecting): take it, then nothing new may come.
                FrameBuffer none;
                client.TryTakeFrame(out none);
                System.Threading.Thread.Sleep(300);
                Assert.IsFalse(client.TryTakeFrame(out none), "no new frame while the backend is gone: the engine keeps showing its last one");
                Assert.Greater(before.Meta.FrameSequence, 0UL);

                backend = Serve(python, store, grpcPort, enginePort);
                Assert.IsTrue(Wait.Posing(client, () => client.Status.State == ConnectionState.Streaming, 20000),
                              "did not reconnect: " + client.Status.Detail);
                Assert.AreNotEqual(firstSession, client.Status.Welcome.SessionId);
                Assert.AreEqual(1, client.Status.Reconnects);
                FrameBuffer after = Wait.NextFrame(client, Quat.Identity, 10000);
                Assert.AreEqual(FrameTransport.SharedMemory, after.Meta.Transport);
                Console.WriteLine("reconnected: " + client.Status.Detail);
            }
            finally
            {
                client.Dispose();
                Kill(backend);
            }
        }
    }
}
