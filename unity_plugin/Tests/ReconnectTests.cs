using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>
    /// A backend restart needs no action in the engine (DESIGN.md section 4): the test runs a real
    /// `starbridge serve` process, kills it (SIGKILL: no Goodbye, a stale ring file left behind), starts it
    /// again on the same port, and watches the client keep its last frame, say why, and come back by itself.
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

        static Process Serve(string python, string store, int grpcPort, int enginePort)
        {
            ProcessStartInfo info = new ProcessStartInfo(python,
                "-m starbridge.cli --store \"" + store + "\" serve --grpc-port " + grpcPort + " --engine-port " + enginePort +
                " --heartbeat-timeout 2 --width 128 --height 72")
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
                FrameBuffer none;
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
