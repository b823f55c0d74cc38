using System;

namespace StarBridge.Core
{
    /// <summary>
    /// One frame's pixels (RGBA8, sRGB, rows top to bottom, tightly packed: Width * 4 bytes a row) and
    /// what is known about it. Allocated once per frame size and reused for every frame.
    /// </summary>
    public sealed class FrameBuffer
    {
        public FrameBuffer(int width, int height)
        {
            if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException("width", "frame size must be positive, got " + width + "x" + height);
            Width = width;
            Height = height;
            Pixels = new byte[width * height * 4];
        }

        public byte[] Pixels { get; private set; }
        public int Width { get; internal set; }
        public int Height { get; internal set; }
        public FrameMeta Meta;

        /// <summary>Bytes of one frame: Width * Height * 4.</summary>
        public int ByteCount { get { return Width * Height * 4; } }
    }

    /// <summary>
    /// Hands frames from the receiving thread to the main thread without copying or allocating: a triple
    /// buffer. The producer fills <see cref="Back"/> and <see cref="Publish"/>es it; the consumer's
    /// <see cref="TryTake"/> swaps in the newest published frame, which stays the consumer's until its next
    /// TryTake. Frames published in between are skipped (the newest one wins). Critical sections are a few
    /// field swaps, so neither side ever waits on the other's work.
    /// </summary>
    public sealed class FrameExchange
    {
        readonly object _lock = new object();
        readonly FrameBuffer[] _buffers = new FrameBuffer[3];
        int _back = 0, _ready = 1, _front = 2;
        bool _fresh;

        public FrameExchange(int width, int height)
        {
            for (int i = 0; i < 3; i++) _buffers[i] = new FrameBuffer(width, height);
            Width = width;
            Height = height;
        }

        public int Width { get; private set; }
        public int Height { get; private set; }

        /// <summary>The producer's buffer to fill. Only the producer thread touches it.</summary>
        public FrameBuffer Back { get { return _buffers[_back]; } }

        /// <summary>Makes <see cref="Back"/> the newest frame; the producer gets another buffer to fill.</summary>
        public void Publish()
        {
            lock (_lock)
            {
                int t = _back;
                _back = _ready;
                _ready = t;
                _fresh = true;
            }
        }

        /// <summary>
        /// The newest frame published since the last call, or false (and the previous frame, still valid)
        /// when nothing new arrived. The returned buffer is the consumer's until its next TryTake.
        /// </summary>
        public bool TryTake(out FrameBuffer frame)
        {
            lock (_lock)
            {
                if (_fresh)
                {
                    int t = _front;
                    _front = _ready;
                    _ready = t;
                    _fresh = false;
                    frame = _buffers[_front];
                    return true;
                }
                frame = _buffers[_front];
                return false;
            }
        }
    }
}
