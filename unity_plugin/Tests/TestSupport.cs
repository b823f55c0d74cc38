using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>
    /// Where the tests find their peers. tests/unity (pytest) starts them and sets these variables; in
    /// the Unity Test Runner set them yourself, or the tests that need them are ignored with the reason.
    /// </summary>
    static class TestEnv
    {
        /// <summary>tests/golden: the golden byte vectors.</summary>
        public const string GoldenDir = "STARBRIDGE_TEST_GOLDEN_DIR";
        /// <summary>A live backend's engine channel (starbridge serve, or Backend in pytest).</summary>
        public const string Backend = "STARBRIDGE_TEST_ENDPOINT";
        /// <summary>A pyzmq ROUTER that echoes every message back (real libzmq; heartbeats on).</summary>
        public const string Echo = "STARBRIDGE_TEST_ECHO_ENDPOINT";
        /// <summary>A scripted pyzmq backend whose behaviour the Hello's client_label picks.</summary>
        public const string Fake = "STARBRIDGE_TEST_FAKE_ENDPOINT";
        /// <summary>Python with starbridge installed, and a scene store holding the demo scene: the
        /// reconnect test runs `python -m starbridge.cli --store STORE serve` itself, to kill it.</summary>
        public const string Python = "STARBRIDGE_TEST_PYTHON";
        public const string Store = "STARBRIDGE_TEST_STORE";

        public static string Require(string name)
        {
            string value = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(value))
            {
                Assert.Ignore(name + " is not set: run `python -m pytest tests/unity` from the StarBridge repository, which starts the peers these tests need");
            }
            return value;
        }

        public static string Golden(string name) { return Path.Combine(Require(GoldenDir), name + ".bin"); }
    }

    static class Wait
    {
        /// <summary>Polls <paramref name="condition"/> every 10 ms until true or <paramref name="timeoutMs"/> passed.</summary>
        public static bool Until(Func<bool> condition, int timeoutMs)
        {
            Stopwatch watch = Stopwatch.StartNew();
            while (watch.ElapsedMilliseconds < timeoutMs)
            {
                if (condition()) return true;
                Thread.Sleep(10);
            }
            return condition();
        }

        /// <summary>Sends poses at about 60 Hz (as an engine tick would) until <paramref name="condition"/> holds.</summary>
        public static bool Posing(BackdropClient client, Func<bool> condition, int timeoutMs)
        {
            return Posing(client, Quat.Identity, condition, timeoutMs);
        }

        public static bool Posing(BackdropClient client, Quat rotation, Func<bool> condition, int timeoutMs)
        {
            Stopwatch watch = Stopwatch.StartNew();
            while (watch.ElapsedMilliseconds < timeoutMs)
            {
                client.SubmitPose(new Vec3(0f, 0f, 0f), rotation, 60f, 0f);
                if (condition()) return true;
                Thread.Sleep(16);
            }
            return condition();
        }

        /// <summary>Poses until a frame arrives, then returns a copy of it (pixels and meta).</summary>
        public static FrameBuffer NextFrame(BackdropClient client, Quat rotation, int timeoutMs, Func<FrameBuffer, bool> accept = null)
        {
            FrameBuffer copy = null;
            bool got = Posing(client, rotation, () =>
            {
                FrameBuffer f;
                if (!client.TryTakeFrame(out f)) return false;
                if (accept != null && !accept(f)) return false;
                copy = new FrameBuffer(f.Width, f.Height) { Meta = f.Meta };
                Buffer.BlockCopy(f.Pixels, 0, copy.Pixels, 0, f.ByteCount);
                return true;
            }, timeoutMs);
            Assert.IsTrue(got, "no frame within " + timeoutMs + " ms; status: " + client.Status.State + ": " + client.Status.Detail);
            return copy;
        }
    }

    /// <summary>Bytes allocated by the calling thread, where the runtime tells (Mono, .NET, Unity's Mono); else the test is ignored.</summary>
    static class Allocations
    {
        static readonly Func<long> Counter = Make();

        static Func<long> Make()
        {
            System.Reflection.MethodInfo method = typeof(GC).GetMethod("GetAllocatedBytesForCurrentThread", Type.EmptyTypes);
            return method == null ? null : (Func<long>)Delegate.CreateDelegate(typeof(Func<long>), method);
        }

        public static long CurrentThread()
        {
            if (Counter == null) Assert.Ignore("this runtime cannot count a thread's allocations");
            return Counter();
        }
    }

    static class Hex
    {
        public static string Of(byte[] data, int offset, int count)
        {
            return BitConverter.ToString(data, offset, count).Replace("-", "").ToLowerInvariant();
        }

        public static byte[] Parse(string hex)
        {
            byte[] b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            return b;
        }
    }
}
