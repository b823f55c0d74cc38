using System;
using System.Diagnostics;

namespace StarBridge.Core
{
    /// <summary>
    /// The engine clock poses are stamped with (CameraPose.engine_time_us) and frames are timed on:
    /// monotonic microseconds since an arbitrary epoch. The backend echoes it, so pose-to-frame latency is
    /// measured on one clock.
    /// </summary>
    public static class EngineClock
    {
        static readonly long Frequency = Stopwatch.Frequency;

        public static long NowMicroseconds()
        {
            long ticks = Stopwatch.GetTimestamp();
            return ticks / Frequency * 1000000L + ticks % Frequency * 1000000L / Frequency;
        }
    }

    /// <summary>
    /// The last <see cref="Capacity"/> latency samples and their percentiles, in preallocated arrays.
    /// Not thread-safe: the owner locks.
    /// </summary>
    public sealed class LatencyWindow
    {
        public const int Capacity = 128;
        readonly float[] _samples = new float[Capacity];
        readonly float[] _sorted = new float[Capacity];
        int _count, _next;

        public int Count { get { return _count; } }

        public void Add(float milliseconds)
        {
            _samples[_next] = milliseconds;
            _next = (_next + 1) % Capacity;
            if (_count < Capacity) _count++;
        }

        public void Clear() { _count = _next = 0; }

        /// <summary>The 50th and 95th percentiles (nearest rank); 0 with no samples.</summary>
        public void Percentiles(out float p50, out float p95)
        {
            if (_count == 0)
            {
                p50 = p95 = 0f;
                return;
            }
            Array.Copy(_samples, _sorted, _count);
            // Insertion sort: at most 128 floats, and unlike Array.Sort it allocates nothing on every runtime.
            for (int i = 1; i < _count; i++)
            {
                float v = _sorted[i];
                int j = i - 1;
                while (j >= 0 && _sorted[j] > v)
                {
                    _sorted[j + 1] = _sorted[j];
                    j--;
                }
                _sorted[j + 1] = v;
            }
            p50 = _sorted[Rank(0.50)];
            p95 = _sorted[Rank(0.95)];
        }

        int Rank(double q) { return Math.Min(_count - 1, Math.Max(0, (int)Math.Ceiling(q * _count) - 1)); }
    }

    /// <summary>Events per second over the last second (at most <see cref="Capacity"/> events). Not thread-safe.</summary>
    public sealed class RateMeter
    {
        public const int Capacity = 256;
        const long WindowUs = 1000000;
        readonly long[] _times = new long[Capacity];
        int _count, _next;

        public void Mark(long nowUs)
        {
            _times[_next] = nowUs;
            _next = (_next + 1) % Capacity;
            if (_count < Capacity) _count++;
        }

        public void Clear() { _count = _next = 0; }

        /// <summary>Rate over the events of the last second before <paramref name="nowUs"/>; 0 with fewer than two.</summary>
        public float PerSecond(long nowUs)
        {
            int n = 0;
            long oldest = 0, newest = 0;
            for (int i = 0; i < _count; i++)
            {
                long t = _times[(_next - 1 - i + Capacity) % Capacity];
                if (nowUs - t > WindowUs) break;
                if (n == 0) newest = t;
                oldest = t;
                n++;
            }
            if (n < 2 || newest <= oldest) return 0f;
            return (n - 1) * 1e6f / (newest - oldest);
        }
    }
}
