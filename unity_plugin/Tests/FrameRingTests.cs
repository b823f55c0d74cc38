using System;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Threading;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>
    /// A frame ring writer following backend/starbridge/transport/ring.py (layout version 1, writer
    /// protocol: counter odd, write, counter even, then latest_slot and latest_frame_sequence), so the
    /// reader can be tested with torn writes on demand. The live tests read rings the real backend writes.
    /// </summary>
    sealed unsafe class TestRingWriter : IDisposable
    {
        readonly MemoryMappedFile _file;
        readonly MemoryMappedViewAccessor _view;
        readonly byte* _base;
        int _last;

        public TestRingWriter(string path, int width, int height, int slots = 3)
        {
            Path = path;
            Width = width;
            Height = height;
            Slots = slots;
            SlotBytes = (128 + width * 4 * height + 4095) / 4096 * 4096;
            FileBytes = 4096 + slots * SlotBytes;
            byte[] header = new byte[4096];
            Buffer.BlockCopy(new byte[] { (byte)'S', (byte)'B', (byte)'R', (byte)'I', (byte)'N', (byte)'G', 0, 1 }, 0, header, 0, 8);
            uint[] words = { 1, 4096, (uint)width, (uint)height, (uint)(width * 4), 1, (uint)slots, (uint)SlotBytes, 128, 4242 };
            for (int i = 0; i < words.Length; i++) BitConverter.GetBytes(words[i]).CopyTo(header, 8 + 4 * i);
            BitConverter.GetBytes(0xFFFFFFFFu).CopyTo(header, 56);
            BitConverter.GetBytes((ulong)FileBytes).CopyTo(header, 64);
            using (FileStream f = new FileStream(path, FileMode.Create, FileAccess.Write))
            {
                f.Write(header, 0, header.Length);
                f.SetLength(FileBytes);
            }
            _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, FileBytes, MemoryMappedFileAccess.ReadWrite);
            _view = _file.CreateViewAccessor(0, FileBytes, MemoryMappedFileAccess.ReadWrite);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
            _last = slots - 1;
        }

        public string Path { get; private set; }
        public int Width { get; private set; }
        public int Height { get; private set; }
        public int Slots { get; private set; }
        public int SlotBytes { get; private set; }
        public int FileBytes { get; private set; }

        public SharedMemoryLayout Layout
        {
            get
            {
                return new SharedMemoryLayout
                {
                    Path = Path, LayoutVersion = 1, HeaderBytes = 4096, SlotCount = (uint)Slots, SlotBytes = (uint)SlotBytes,
                    SlotHeaderBytes = 128, Stride = (uint)(Width * 4), PixelFormat = 1, FileBytes = (ulong)FileBytes,
                };
            }
        }

        byte* Slot(int i) { return _base + 4096 + (long)i * SlotBytes; }

        public long Counter(int slot) { return Volatile.Read(ref *(long*)Slot(slot)); }

        public void SetCounter(int slot, long value) { Volatile.Write(ref *(long*)Slot(slot), value); }

        /// <summary>Writes frame <paramref name="sequence"/> (every pixel byte = fill) into the next slot; returns the slot.
        /// <paramref name="midWrite"/> runs between the two halves of the pixels, with the counter odd.</summary>
        public int Write(ulong sequence, byte fill, Vec3 position, Quat rotation, Action midWrite = null)
        {
            int slot = (_last + 1) % Slots;
            byte* s = Slot(slot);
            long counter = Counter(slot);
            SetCounter(slot, counter + 1);
            Thread.MemoryBarrier();
            *(ulong*)(s + 8) = sequence;
            *(ulong*)(s + 16) = sequence * 10;
            *(ulong*)(s + 24) = 123456;
            *(double*)(s + 32) = sequence * 0.5;
            *(float*)(s + 40) = position.X; *(float*)(s + 44) = position.Y; *(float*)(s + 48) = position.Z;
            *(float*)(s + 52) = rotation.X; *(float*)(s + 56) = rotation.Y; *(float*)(s + 60) = rotation.Z; *(float*)(s + 64) = rotation.W;
            *(float*)(s + 68) = 60f;
            *(float*)(s + 72) = 1.5f;
            *(float*)(s + 76) = 2.5f;
            *(uint*)(s + 80) = (uint)Width;
            *(uint*)(s + 84) = (uint)Height;
            int bytes = Width * Height * 4;
            for (int i = 0; i < bytes / 2; i++) s[128 + i] = fill;
            if (midWrite != null) midWrite();
            for (int i = bytes / 2; i < bytes; i++) s[128 + i] = fill;
            Thread.MemoryBarrier();
            SetCounter(slot, counter + 2);
            Volatile.Write(ref *(int*)(_base + 56), slot);
            Volatile.Write(ref *(long*)(_base + 48), (long)sequence);
            _last = slot;
            return slot;
        }

        public void Dispose()
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
            File.Delete(Path);
        }
    }

    [TestFixture]
    public class FrameRingTests
    {
        const int W = 64, H = 36;
        string _path;

        [SetUp]
        public void MakePath() { _path = Path.Combine(Path.GetTempPath(), "starbridge-test-" + Guid.NewGuid().ToString("N")); }

        [TearDown]
        public void RemoveFile() { if (File.Exists(_path)) File.Delete(_path); }

        static void AssertFill(FrameBuffer f, byte fill)
        {
            for (int i = 0; i < f.ByteCount; i++)
            {
                if (f.Pixels[i] != fill) Assert.Fail("pixel byte " + i + " is " + f.Pixels[i] + ", expected " + fill + ": a torn copy was accepted");
            }
        }

        [Test]
        public void Frames_round_robin_through_the_slots_with_their_headers()
        {
            using (TestRingWriter writer = new TestRingWriter(_path, W, H))
            using (FrameRingReader reader = FrameRingReader.Open(_path, writer.Layout, W, H))
            {
                FrameBuffer buffer = new FrameBuffer(W, H);
                Assert.IsFalse(reader.ReadLatest(0, buffer), "no frame yet");
                Assert.IsFalse(reader.ReadSlot(0, buffer), "never written");
                Vec3 position = new Vec3(-1.5f, 0.25f, -4f);
                Quat rotation = new Quat(-0.5f, 0.5f, 0.5f, 0.5f);
                for (ulong seq = 1; seq <= 5; seq++)
                {
                    int slot = writer.Write(seq, (byte)(seq * 3), position, rotation);
                    Assert.AreEqual((int)((seq - 1) % 3), slot);
                    Assert.IsTrue(reader.ReadSlot(slot, buffer));
                    Assert.AreEqual(seq, buffer.Meta.FrameSequence);
                    AssertFill(buffer, (byte)(seq * 3));
                }
                Assert.AreEqual(5UL, reader.LatestFrameSequence);
                Assert.IsTrue(reader.ReadLatest(4, buffer));
                FrameMeta m = buffer.Meta;
                Assert.AreEqual(5UL, m.FrameSequence);
                Assert.AreEqual(1u, m.Slot);
                Assert.AreEqual(50UL, m.PoseSequence);
                Assert.AreEqual(123456UL, m.EngineTimeUs);
                Assert.AreEqual(2.5, m.SceneTimeS);
                Assert.AreEqual(position, m.Position);
                Assert.AreEqual(rotation, m.Rotation);
                Assert.AreEqual(60f, m.VerticalFovDeg);
                Assert.AreEqual(1.5f, m.Aspect);
                Assert.AreEqual(2.5f, m.GenerationLatencyMs);
                Assert.AreEqual(W, m.Width);
                Assert.AreEqual(H, m.Height);
                Assert.AreEqual(FrameTransport.SharedMemory, m.Transport);
                Assert.IsFalse(reader.ReadLatest(5, buffer), "nothing newer than 5");
                Assert.IsFalse(reader.WriterClosed);
            }
        }

        [Test]
        public void A_slot_being_written_is_not_accepted()
        {
            using (TestRingWriter writer = new TestRingWriter(_path, W, H))
            using (FrameRingReader reader = FrameRingReader.Open(_path, writer.Layout, W, H))
            {
                FrameBuffer buffer = new FrameBuffer(W, H);
                bool readMidWrite = true;
                writer.Write(1, 9, new Vec3(), Quat.Identity, () => readMidWrite = reader.ReadSlot(0, buffer));
                Assert.IsFalse(readMidWrite, "the counter was odd");
                Assert.IsTrue(reader.ReadSlot(0, buffer));
                writer.SetCounter(0, writer.Counter(0) + 1); // a writer that died mid-write
                Assert.IsFalse(reader.ReadSlot(0, buffer));
                Assert.IsFalse(reader.ReadLatest(0, buffer));
            }
        }

        [Test]
        public void Concurrent_writes_never_yield_a_torn_frame()
        {
            using (TestRingWriter writer = new TestRingWriter(_path, W, H))
            using (FrameRingReader reader = FrameRingReader.Open(_path, writer.Layout, W, H))
            {
                const int frames = 3000;
                Thread thread = new Thread(() =>
                {
                    for (ulong seq = 1; seq <= frames; seq++)
                    {
                        writer.Write(seq, (byte)(seq % 251), new Vec3(), Quat.Identity, () => Thread.SpinWait(50));
                    }
                });
                FrameBuffer buffer = new FrameBuffer(W, H);
                int accepted = 0;
                thread.Start();
                while (thread.IsAlive)
                {
                    if (reader.ReadSlot((int)(accepted % 3), buffer) || reader.ReadLatest(0, buffer))
                    {
                        AssertFill(buffer, (byte)(buffer.Meta.FrameSequence % 251));
                        accepted++;
                    }
                }
                thread.Join();
                Assert.Greater(accepted, 0);
                Assert.IsTrue(reader.ReadLatest(frames - 1, buffer));
                Assert.AreEqual((ulong)frames, buffer.Meta.FrameSequence);
            }
        }

        [Test]
        public void A_missing_ring_names_the_inline_transport()
        {
            StarBridgeException e = Assert.Throws<StarBridgeException>(() => FrameRingReader.Open(_path, null, W, H));
            StringAssert.Contains("does not exist", e.Message);
            StringAssert.Contains("inline transport", e.Message);
            Assert.AreEqual("shared_memory.path", e.Field);
        }

        [Test]
        public void Rings_that_do_not_match_are_refused_with_the_reason()
        {
            using (TestRingWriter writer = new TestRingWriter(_path, W, H))
            {
                SharedMemoryLayout wrong = writer.Layout;
                wrong.SlotCount = 4;
                StringAssert.Contains("does not match Welcome", Assert.Throws<StarBridgeException>(() => FrameRingReader.Open(_path, wrong, W, H)).Message);
                StringAssert.Contains("Welcome agreed 32x36", Assert.Throws<StarBridgeException>(() => FrameRingReader.Open(_path, null, 32, H)).Message);
            }
            File.WriteAllBytes(_path, new byte[100]);
            StringAssert.Contains("truncated", Assert.Throws<StarBridgeException>(() => FrameRingReader.Open(_path, null, W, H)).Message);
            File.WriteAllBytes(_path, new byte[8192]);
            StringAssert.Contains("bad magic", Assert.Throws<StarBridgeException>(() => FrameRingReader.Open(_path, null, W, H)).Message);
            using (TestRingWriter writer = new TestRingWriter(_path + "v", W, H))
            {
                using (FileStream f = new FileStream(writer.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
                {
                    f.Position = 8;
                    f.Write(BitConverter.GetBytes(2u), 0, 4);
                }
                StringAssert.Contains("layout version 2, this plugin reads version 1",
                                      Assert.Throws<StarBridgeException>(() => FrameRingReader.Open(writer.Path, null, W, H)).Message);
            }
        }
    }
}
