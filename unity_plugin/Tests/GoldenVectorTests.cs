using System.IO;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>
    /// The hand-written codec against tests/golden/*.bin, made by the real protobuf runtime
    /// (tests/golden/make_golden.py): every message an engine sends is encoded byte for byte the same,
    /// every message the backend sends decodes to the fields golden.json lists. Test names are the
    /// golden vectors' names; tests/unity checks that every vector in golden.json has one here.
    /// </summary>
    [TestFixture]
    public class GoldenVectorTests
    {
        static readonly Vec3 Position = new Vec3(-1.5f, 0.25f, -4.0f);
        static readonly Quat Rotation = new Quat(-0.5f, 0.5f, 0.5f, 0.5f);
        const ulong BigSequence = 4294967301UL; // 2^32 + 5
        const ulong EngineTimeUs = 1700000000123456UL;

        static void AssertEncodes(string golden, byte[] buffer, int start, int end)
        {
            byte[] expected = File.ReadAllBytes(TestEnv.Golden(golden));
            Assert.AreEqual(Hex.Of(expected, 0, expected.Length), Hex.Of(buffer, start, end - start), golden);
        }

        static BackendMessageKind Decode(string golden, ref FrameMeta frame, out WelcomeInfo welcome, out BackendError error)
        {
            byte[] data = File.ReadAllBytes(TestEnv.Golden(golden));
            return EngineCodec.DecodeBackend(data, 0, data.Length, ref frame, out welcome, out error);
        }

        [Test]
        public void hello_full()
        {
            HelloRequest h = new HelloRequest
            {
                EngineName = "Unity",
                EngineVersion = "6000.0.23f1",
                SceneId = "demo",
                Width = 1280,
                Height = 720,
                Fps = 30f,
                Transport = FrameTransport.Inline,
                Token = "s3cret-token",
                ClientLabel = "Main Camera \u2014 level 1",
                SessionId = "a1b2c3",
            };
            byte[] buffer = new byte[3 + EngineCodec.HelloBytes(h)];
            int end = EngineCodec.EncodeHello(buffer, 3, h); // at an offset, as the client leaves room for the frame header
            AssertEncodes("hello_full", buffer, 3, end);
        }

        [Test]
        public void hello_minimal()
        {
            HelloRequest h = new HelloRequest { ProtocolMinor = 0, Transport = FrameTransport.Unspecified };
            byte[] buffer = new byte[EngineCodec.HelloBytes(h)];
            AssertEncodes("hello_minimal", buffer, 0, EngineCodec.EncodeHello(buffer, 0, h));
        }

        [Test]
        public void hello_shared_memory()
        {
            HelloRequest h = new HelloRequest
            {
                EngineName = "Godot",
                EngineVersion = "4.6.stable",
                Width = 512,
                Height = 288,
                Fps = 24f,
                Transport = FrameTransport.SharedMemory,
            };
            byte[] buffer = new byte[EngineCodec.HelloBytes(h)];
            AssertEncodes("hello_shared_memory", buffer, 0, EngineCodec.EncodeHello(buffer, 0, h));
        }

        [Test]
        public void pose()
        {
            byte[] buffer = new byte[EngineCodec.MaxPoseBytes];
            int end = EngineCodec.EncodePose(buffer, 0, BigSequence, EngineTimeUs, Position, Rotation, 60f, 1.75f);
            AssertEncodes("pose", buffer, 0, end);
        }

        [Test]
        public void pose_origin()
        {
            byte[] buffer = new byte[EngineCodec.MaxPoseBytes];
            int end = EngineCodec.EncodePose(buffer, 0, 128, 0, new Vec3(0f, 0f, 0f), new Quat(0f, 0f, 0f, 1f), 45f, 0f);
            AssertEncodes("pose_origin", buffer, 0, end);
        }

        [Test]
        public void pose_varint_edges()
        {
            byte[] buffer = new byte[EngineCodec.MaxPoseBytes];
            int end = EngineCodec.EncodePose(buffer, 0, ulong.MaxValue, 9223372036854775808UL,
                                             new Vec3(-1024.5f, -0.0078125f, 3000000f), new Quat(0f, -1f, 0f, 0f), 127f, 0.5f);
            AssertEncodes("pose_varint_edges", buffer, 0, end);
            Assert.LessOrEqual(end, EngineCodec.MaxPoseBytes);
        }

        [Test]
        public void time_play()
        {
            byte[] b = new byte[32];
            AssertEncodes("time_play", b, 0, EngineCodec.EncodeTime(b, 0, TimeAction.Play, 0.0, 0f));
        }

        [Test]
        public void time_pause()
        {
            byte[] b = new byte[32];
            AssertEncodes("time_pause", b, 0, EngineCodec.EncodeTime(b, 0, TimeAction.Pause, 0.0, 0f));
        }

        [Test]
        public void time_seek()
        {
            byte[] b = new byte[32];
            AssertEncodes("time_seek", b, 0, EngineCodec.EncodeTime(b, 0, TimeAction.Seek, 12.625, 0f));
        }

        [Test]
        public void time_set_speed()
        {
            byte[] b = new byte[32];
            AssertEncodes("time_set_speed", b, 0, EngineCodec.EncodeTime(b, 0, TimeAction.SetSpeed, 0.0, 0.5f));
        }

        [Test]
        public void goodbye()
        {
            byte[] b = new byte[64];
            AssertEncodes("goodbye", b, 0, EngineCodec.EncodeGoodbye(b, 0, "editor stopped playing"));
        }

        [Test]
        public void goodbye_empty()
        {
            byte[] b = new byte[8];
            AssertEncodes("goodbye_empty", b, 0, EngineCodec.EncodeGoodbye(b, 0, ""));
        }

        [Test]
        public void welcome_shared_memory()
        {
            FrameMeta frame = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Welcome, Decode("welcome_shared_memory", ref frame, out w, out e));
            Assert.AreEqual("9f1c2d3e4b5a", w.SessionId);
            Assert.AreEqual(1u, w.ProtocolMajor);
            Assert.AreEqual(0u, w.ProtocolMinor);
            Assert.AreEqual(512, w.Width);
            Assert.AreEqual(288, w.Height);
            Assert.AreEqual(30f, w.Fps);
            Assert.AreEqual(FrameTransport.SharedMemory, w.Transport);
            SharedMemoryLayout s = w.SharedMemory;
            Assert.IsNotNull(s);
            Assert.AreEqual("/dev/shm/starbridge-9f1c2d3e4b5a", s.Path);
            Assert.AreEqual(1u, s.LayoutVersion);
            Assert.AreEqual(4096u, s.HeaderBytes);
            Assert.AreEqual(3u, s.SlotCount);
            Assert.AreEqual(593920u, s.SlotBytes);
            Assert.AreEqual(128u, s.SlotHeaderBytes);
            Assert.AreEqual(2048u, s.Stride);
            Assert.AreEqual(1u, s.PixelFormat);
            Assert.AreEqual(1785856UL, s.FileBytes);
            Assert.AreEqual("demo", w.SceneId);
            Assert.AreEqual(8.0, w.SceneDurationS);
            Assert.AreEqual(10f, w.HeartbeatTimeoutS);
            Assert.AreEqual(3u, w.BlockFrames);
            Assert.AreEqual("explicit-fill", w.Generator);
            Assert.AreEqual("0.1.0", w.BackendVersion);
            Assert.AreEqual("", w.SessionSecret, "protocol 1.0: no secret");
        }

        [Test]
        public void welcome_inline()
        {
            FrameMeta frame = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Welcome, Decode("welcome_inline", ref frame, out w, out e));
            Assert.AreEqual("s-2", w.SessionId);
            Assert.AreEqual(1u, w.ProtocolMajor);
            Assert.AreEqual(3u, w.ProtocolMinor);
            Assert.IsNull(ProtocolVersion.Check(ProtocolVersion.Major, ProtocolVersion.Minor, w.ProtocolMajor, w.ProtocolMinor), "a newer minor works");
            Assert.AreEqual(1280, w.Width);
            Assert.AreEqual(720, w.Height);
            Assert.AreEqual(60f, w.Fps);
            Assert.AreEqual(FrameTransport.Inline, w.Transport);
            Assert.IsNull(w.SharedMemory);
            Assert.AreEqual("harbour", w.SceneId);
            Assert.AreEqual(12.375, w.SceneDurationS);
            Assert.AreEqual(2.5f, w.HeartbeatTimeoutS);
            Assert.AreEqual(1u, w.BlockFrames);
            Assert.AreEqual("star-tiny", w.Generator);
        }

        [Test]
        public void welcome_session_secret()
        {
            FrameMeta frame = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Welcome, Decode("welcome_session_secret", ref frame, out w, out e));
            Assert.AreEqual("7d41e0c2", w.SessionId);
            Assert.AreEqual(1u, w.ProtocolMajor);
            Assert.AreEqual(1u, w.ProtocolMinor);
            Assert.AreEqual(320, w.Width);
            Assert.AreEqual(180, w.Height);
            Assert.AreEqual(20f, w.Fps);
            Assert.AreEqual(FrameTransport.Inline, w.Transport);
            Assert.IsNull(w.SharedMemory);
            Assert.AreEqual("demo", w.SceneId);
            Assert.AreEqual(8.0, w.SceneDurationS);
            Assert.AreEqual(10f, w.HeartbeatTimeoutS);
            Assert.AreEqual(3u, w.BlockFrames);
            Assert.AreEqual("explicit-fill", w.Generator);
            Assert.AreEqual("0.2.0", w.BackendVersion);
            Assert.AreEqual("k3Y-9fQx_2b7Ws0pLr4TzA", w.SessionSecret, "field 14 (protocol 1.1) is read, not mistaken for another");
        }

        [Test]
        public void frame_ready()
        {
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Frame, Decode("frame_ready", ref f, out w, out e));
            Assert.AreEqual(4294967303UL, f.FrameSequence);
            Assert.AreEqual(2u, f.Slot);
            Assert.AreEqual(BigSequence, f.PoseSequence);
            Assert.AreEqual(EngineTimeUs, f.EngineTimeUs);
            Assert.AreEqual(Position, f.Position);
            Assert.AreEqual(Rotation, f.Rotation);
            Assert.AreEqual(60f, f.VerticalFovDeg);
            Assert.AreEqual(1.75f, f.Aspect);
            Assert.AreEqual(3.25, f.SceneTimeS);
            Assert.AreEqual(12.5f, f.GenerationLatencyMs);
            Assert.AreEqual(512, f.Width);
            Assert.AreEqual(288, f.Height);
        }

        [Test]
        public void frame_ready_inline()
        {
            FrameMeta f = new FrameMeta { Slot = 7, SceneTimeS = 99 }; // stale values must not survive decoding
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Frame, Decode("frame_ready_inline", ref f, out w, out e));
            Assert.AreEqual(1UL, f.FrameSequence);
            Assert.AreEqual(0u, f.Slot);
            Assert.AreEqual(1UL, f.PoseSequence);
            Assert.AreEqual(0UL, f.EngineTimeUs);
            Assert.AreEqual(new Vec3(0f, 1.5f, 0f), f.Position);
            Assert.AreEqual(new Quat(0f, 0f, 0f, 1f), f.Rotation);
            Assert.AreEqual(45f, f.VerticalFovDeg);
            Assert.AreEqual(0f, f.Aspect);
            Assert.AreEqual(64f / 36f, f.EffectiveAspect, 1e-6);
            Assert.AreEqual(0.0, f.SceneTimeS);
            Assert.AreEqual(0.75f, f.GenerationLatencyMs);
            Assert.AreEqual(64, f.Width);
            Assert.AreEqual(36, f.Height);
        }

        [Test]
        public void error_fatal()
        {
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Error, Decode("error_fatal", ref f, out w, out e));
            Assert.AreEqual(ErrorCode.ProtocolMismatch, e.Code);
            Assert.IsTrue(e.Fatal);
            Assert.AreEqual("hello.protocol", e.Field);
            StringAssert.StartsWith("protocol mismatch: the backend speaks 1.0, the peer sent 2.0;", e.Message);
        }

        [Test]
        public void error_nonfatal()
        {
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Error, Decode("error_nonfatal", ref f, out w, out e));
            Assert.AreEqual(ErrorCode.InvalidArgument, e.Code);
            Assert.IsFalse(e.Fatal);
            Assert.AreEqual("pose.pose.rotation", e.Field);
            Assert.AreEqual("pose.pose.rotation must be a unit quaternion: |q| = 2.000000, allowed 1 \u00b1 0.001", e.Message);
        }

        [Test]
        public void error_shutting_down()
        {
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Error, Decode("error_shutting_down", ref f, out w, out e));
            Assert.AreEqual(ErrorCode.ShuttingDown, e.Code);
            Assert.AreEqual(10, (int)e.Code);
            Assert.IsFalse(e.Fatal);
            Assert.AreEqual("", e.Field);
            StringAssert.StartsWith("the backend is shutting down;", e.Message);
        }
    }
}
