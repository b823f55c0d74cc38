using System;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Threading;

namespace StarBridge.Core
{
    /// <summary>
    /// Reads frames out of a session's shared-memory frame ring: the file the backend names in
    /// Welcome.shared_memory, mapped read-only. The layout (version 1) and the seqlock reader protocol
    /// are specified in backend/starbridge/transport/ring.py; the offsets below are its names.
    /// All integers little-endian (every platform Unity runs on).
    ///
    /// <para>Reading a slot (ring.py "Reader protocol"): read the slot's counter c1 with an acquire load
    /// (Volatile.Read of one aligned 8-byte word); odd means being written, 0 never written; copy the
    /// slot header and the pixels into our own buffer; full memory barrier; read the counter again, c2;
    /// keep the copy only when c1 == c2. A bounded number of retries, then give up until the next frame.
    /// The writer is never blocked.</para>
    /// </summary>
    public sealed unsafe class FrameRingReader : IDisposable
    {
        // File header (ring.py OFF_*).
        public const int HeaderBytes = 4096;
        public const int SlotHeaderBytes = 128;
        public const uint LayoutVersion = 1;
        public const uint PixelFormatRgba8Srgb = 1;
        public const int MinSlots = 3;
        public const int ReadAttempts = 8;
        const int OffLayoutVersion = 8, OffHeaderBytes = 12, OffWidth = 16, OffHeight = 20, OffStride = 24;
        const int OffPixelFormat = 28, OffSlotCount = 32, OffSlotBytes = 36, OffSlotHeaderBytes = 40;
        const int OffLatestFrameSequence = 48, OffLatestSlot = 56, OffClosed = 60, OffFileBytes = 64;
        // Slot header (ring.py SLOT_OFF_*).
        const int SlotCounter = 0, SlotFrameSequence = 8, SlotPoseSequence = 16, SlotEngineTimeUs = 24;
        const int SlotSceneTimeS = 32, SlotPosition = 40, SlotRotation = 52, SlotFov = 68, SlotAspect = 72;
        const int SlotGenerationMs = 76, SlotWidth = 80, SlotHeight = 84;
        static readonly byte[] Magic = { (byte)'S', (byte)'B', (byte)'R', (byte)'I', (byte)'N', (byte)'G', 0, 1 };

        readonly MemoryMappedFile _file;
        readonly MemoryMappedViewAccessor _view;
        byte* _base;

        public string Path { get; private set; }
        public int Width { get; private set; }
        public int Height { get; private set; }
        public int Stride { get; private set; }
        public int SlotCount { get; private set; }
        public long SlotBytes { get; private set; }
        public long FileBytes { get; private set; }

        FrameRingReader(string path, MemoryMappedFile file, MemoryMappedViewAccessor view)
        {
            Path = path;
            _file = file;
            _view = view;
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
        }

        /// <summary>
        /// Opens and validates a ring file. <paramref name="expected"/> (Welcome's layout) and the agreed
        /// frame size must match the file's header. Throws StarBridgeException (InvalidArgument, field
        /// "shared_memory.path") with the reason and the fix: a missing file usually means the backend
        /// runs on another machine, where the inline transport is the one that works.
        /// </summary>
        public static FrameRingReader Open(string path, SharedMemoryLayout expected, int width, int height)
        {
            FileStream stream;
            try
            {
                stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (FileNotFoundException)
            {
                throw RingError("frame ring " + path + " does not exist: the session ended or the backend runs on " +
                                "another machine (use the inline transport there)");
            }
            catch (DirectoryNotFoundException)
            {
                throw RingError("frame ring " + path + " does not exist: the backend runs on another machine " +
                                "(use the inline transport there)");
            }
            catch (Exception e)
            {
                throw RingError("frame ring " + path + " cannot be opened: " + e.Message);
            }
            MemoryMappedFile file = null;
            try
            {
                byte[] header = new byte[HeaderBytes];
                int got = 0;
                while (got < HeaderBytes)
                {
                    int n = stream.Read(header, got, HeaderBytes - got);
                    if (n <= 0) break;
                    got += n;
                }
                if (got < HeaderBytes)
                {
                    throw RingError("frame ring " + path + " is truncated: " + got + " bytes, the header alone needs " + HeaderBytes);
                }
                long fileBytes = Validate(header, path, expected, width, height, stream.Length);
                file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, false);
                MemoryMappedViewAccessor view = file.CreateViewAccessor(0, fileBytes, MemoryMappedFileAccess.Read);
                FrameRingReader reader = new FrameRingReader(path, file, view);
                reader.Width = width;
                reader.Height = height;
                reader.Stride = width * 4;
                reader.SlotCount = (int)U32(header, OffSlotCount);
                reader.SlotBytes = U32(header, OffSlotBytes);
                reader.FileBytes = fileBytes;
                return reader;
            }
            catch (StarBridgeException)
            {
                if (file != null) file.Dispose(); else stream.Dispose();
                throw;
            }
            catch (Exception e)
            {
                if (file != null) file.Dispose(); else stream.Dispose();
                throw RingError("frame ring " + path + " cannot be mapped: " + e.Message);
            }
        }

        static long Validate(byte[] h, string path, SharedMemoryLayout expected, int width, int height, long actualBytes)
        {
            string where = "frame ring " + path;
            for (int i = 0; i < Magic.Length; i++)
            {
                if (h[i] != Magic[i]) throw RingError(where + " is not a StarBridge frame ring (bad magic)");
            }
            uint version = U32(h, OffLayoutVersion);
            if (version != LayoutVersion)
            {
                throw RingError(where + " has layout version " + version + ", this plugin reads version " + LayoutVersion +
                                ": update the plugin or the backend so they match");
            }
            uint w = U32(h, OffWidth), hh = U32(h, OffHeight), stride = U32(h, OffStride), slots = U32(h, OffSlotCount);
            uint slotBytes = U32(h, OffSlotBytes);
            ulong fileBytes = U64(h, OffFileBytes);
            ulong wantSlotBytes = ((ulong)SlotHeaderBytes + (ulong)w * 4 * hh + 4095) / 4096 * 4096;
            Check(where, "header_bytes", U32(h, OffHeaderBytes), HeaderBytes);
            Check(where, "slot_header_bytes", U32(h, OffSlotHeaderBytes), SlotHeaderBytes);
            Check(where, "pixel_format", U32(h, OffPixelFormat), PixelFormatRgba8Srgb);
            Check(where, "stride", stride, (ulong)w * 4);
            Check(where, "slot_bytes", slotBytes, wantSlotBytes);
            Check(where, "file_bytes", fileBytes, HeaderBytes + (ulong)slots * slotBytes);
            if (slots < MinSlots) throw RingError(where + " has " + slots + " slots, at least " + MinSlots + " are needed");
            if (w != (uint)width || hh != (uint)height)
            {
                throw RingError(where + " holds " + w + "x" + hh + " frames, Welcome agreed " + width + "x" + height);
            }
            if (expected != null)
            {
                if (expected.SlotCount != slots || expected.SlotBytes != slotBytes || expected.Stride != stride ||
                    expected.FileBytes != fileBytes)
                {
                    throw RingError(where + " does not match Welcome: file has (slots, slot bytes, stride, file bytes) = (" +
                                    slots + ", " + slotBytes + ", " + stride + ", " + fileBytes + "), Welcome says (" +
                                    expected.SlotCount + ", " + expected.SlotBytes + ", " + expected.Stride + ", " +
                                    expected.FileBytes + ")");
                }
            }
            if ((ulong)actualBytes < fileBytes)
            {
                throw RingError(where + " is truncated: " + actualBytes + " bytes, its header says " + fileBytes);
            }
            return (long)fileBytes;
        }

        static void Check(string where, string name, ulong got, ulong want)
        {
            if (got != want) throw RingError(where + " has " + name + " = " + got + ", expected " + want);
        }

        static uint U32(byte[] b, int o) { return (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24); }

        static ulong U64(byte[] b, int o) { return U32(b, o) | (ulong)U32(b, o + 4) << 32; }

        static StarBridgeException RingError(string message)
        {
            return new StarBridgeException(ErrorCode.InvalidArgument, message, "shared_memory.path");
        }

        /// <summary>True once the writer marked the ring closed (no more frames will come).</summary>
        public bool WriterClosed
        {
            get { return _base == null || Volatile.Read(ref *(int*)(_base + OffClosed)) != 0; }
        }

        /// <summary>The newest published frame sequence: a hint (0: none yet).</summary>
        public ulong LatestFrameSequence
        {
            get { return _base == null ? 0UL : (ulong)Volatile.Read(ref *(long*)(_base + OffLatestFrameSequence)); }
        }

        /// <summary>
        /// Copies the frame in <paramref name="slot"/> into <paramref name="destination"/> (pixels and
        /// <see cref="FrameMeta"/> from the slot header); false if the slot was never written or kept
        /// changing for <see cref="ReadAttempts"/> tries.
        /// </summary>
        public bool ReadSlot(int slot, FrameBuffer destination)
        {
            if (slot < 0 || slot >= SlotCount) return false;
            for (int attempt = 0; attempt < ReadAttempts; attempt++)
            {
                if (ReadOnce(slot, destination)) return true;
            }
            return false;
        }

        /// <summary>
        /// Copies the newest complete frame newer than <paramref name="newerThan"/> into
        /// <paramref name="destination"/>; false when there is none (yet) or the writer kept overwriting it.
        /// </summary>
        public bool ReadLatest(ulong newerThan, FrameBuffer destination)
        {
            if (_base == null) return false;
            for (int attempt = 0; attempt < ReadAttempts; attempt++)
            {
                if ((ulong)Volatile.Read(ref *(long*)(_base + OffLatestFrameSequence)) <= newerThan) return false;
                uint slot = (uint)Volatile.Read(ref *(int*)(_base + OffLatestSlot));
                if (slot >= (uint)SlotCount) return false;
                if (ReadOnce((int)slot, destination) && destination.Meta.FrameSequence > newerThan) return true;
            }
            return false;
        }

        bool ReadOnce(int slot, FrameBuffer destination)
        {
            if (_base == null) throw new ObjectDisposedException("FrameRingReader");
            if (destination.Pixels.Length < Stride * Height)
            {
                throw new ArgumentException("destination holds " + destination.Pixels.Length + " bytes, a frame needs " + Stride * Height);
            }
            byte* s = _base + HeaderBytes + slot * SlotBytes;
            // 3. the counter, acquire: nothing below is read before it
            long c1 = Volatile.Read(ref *(long*)(s + SlotCounter));
            if ((c1 & 1) != 0 || c1 == 0) return false;
            // 4. the slot header and the pixels
            FrameMeta m = default(FrameMeta);
            m.Slot = (uint)slot;
            m.FrameSequence = *(ulong*)(s + SlotFrameSequence);
            m.PoseSequence = *(ulong*)(s + SlotPoseSequence);
            m.EngineTimeUs = *(ulong*)(s + SlotEngineTimeUs);
            m.SceneTimeS = *(double*)(s + SlotSceneTimeS);
            m.Position = new Vec3(*(float*)(s + SlotPosition), *(float*)(s + SlotPosition + 4), *(float*)(s + SlotPosition + 8));
            m.Rotation = new Quat(*(float*)(s + SlotRotation), *(float*)(s + SlotRotation + 4),
                                  *(float*)(s + SlotRotation + 8), *(float*)(s + SlotRotation + 12));
            m.VerticalFovDeg = *(float*)(s + SlotFov);
            m.Aspect = *(float*)(s + SlotAspect);
            m.GenerationLatencyMs = *(float*)(s + SlotGenerationMs);
            m.Width = (int)*(uint*)(s + SlotWidth);
            m.Height = (int)*(uint*)(s + SlotHeight);
            m.Transport = FrameTransport.SharedMemory;
            int bytes = Stride * Height;
            fixed (byte* dst = destination.Pixels)
            {
                Buffer.MemoryCopy(s + SlotHeaderBytes, dst, destination.Pixels.Length, bytes);
            }
            // 5. full barrier, then the counter again: the copy counts only if no write overlapped it
            Interlocked.MemoryBarrier();
            long c2 = Volatile.Read(ref *(long*)(s + SlotCounter));
            if (c1 != c2 || m.Width != Width || m.Height != Height) return false;
            destination.Meta = m;
            destination.Width = Width;
            destination.Height = Height;
            return true;
        }

        /// <summary>Unmaps the file. Idempotent. The backend removes the file itself.</summary>
        public void Dispose()
        {
            if (_base == null) return;
            _base = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
        }
    }
}
