using System;
using System.Runtime.InteropServices;
using System.Text;

namespace StarBridge.Core
{
    /// <summary>Protobuf wire types (protobuf encoding specification, "Message Structure").</summary>
    public enum WireType
    {
        Varint = 0,
        Fixed64 = 1,
        LengthDelimited = 2,
        StartGroup = 3,
        EndGroup = 4,
        Fixed32 = 5,
    }

    /// <summary>Reinterprets floats and doubles as their IEEE-754 bits without allocating or unsafe code.</summary>
    [StructLayout(LayoutKind.Explicit)]
    internal struct FloatBits
    {
        [FieldOffset(0)] public float Single;
        [FieldOffset(0)] public uint UInt32;
        [FieldOffset(0)] public double Double;
        [FieldOffset(0)] public ulong UInt64;
    }

    /// <summary>
    /// A minimal protobuf writer (https://protobuf.dev/programming-guides/encoding/) into a caller-owned
    /// byte array: varints, fixed32 (float), fixed64 (double), and length-delimited strings and
    /// sub-messages, which is everything an engine sends (engine.proto's wire rule). proto3 semantics:
    /// scalar fields holding their default (0, +0.0, "", false) are omitted, like the protobuf runtime
    /// does (so -0.0 is written); sub-messages are written whenever the caller writes them, even empty.
    /// Nothing allocates. The caller sizes the buffer; writing past its end throws
    /// IndexOutOfRangeException.
    /// </summary>
    public struct ProtoWriter
    {
        readonly byte[] _buffer;
        int _position;

        public ProtoWriter(byte[] buffer, int offset)
        {
            _buffer = buffer;
            _position = offset;
        }

        /// <summary>Index of the next byte to write.</summary>
        public int Position { get { return _position; } }

        public void WriteVarint(ulong value)
        {
            while (value >= 0x80)
            {
                _buffer[_position++] = (byte)(value | 0x80);
                value >>= 7;
            }
            _buffer[_position++] = (byte)value;
        }

        public void WriteTag(int field, WireType type) { WriteVarint((ulong)((field << 3) | (int)type)); }

        /// <summary>uint32, uint64, enum and bool fields: a varint, omitted when 0.</summary>
        public void WriteUInt64(int field, ulong value)
        {
            if (value == 0) return;
            WriteTag(field, WireType.Varint);
            WriteVarint(value);
        }

        /// <summary>A float field (fixed32, little-endian), omitted when +0.0.</summary>
        public void WriteFloat(int field, float value)
        {
            FloatBits bits = default(FloatBits);
            bits.Single = value;
            if (bits.UInt32 == 0) return;
            WriteTag(field, WireType.Fixed32);
            uint u = bits.UInt32;
            _buffer[_position++] = (byte)u;
            _buffer[_position++] = (byte)(u >> 8);
            _buffer[_position++] = (byte)(u >> 16);
            _buffer[_position++] = (byte)(u >> 24);
        }

        /// <summary>A double field (fixed64, little-endian), omitted when +0.0.</summary>
        public void WriteDouble(int field, double value)
        {
            FloatBits bits = default(FloatBits);
            bits.Double = value;
            if (bits.UInt64 == 0) return;
            WriteTag(field, WireType.Fixed64);
            ulong u = bits.UInt64;
            for (int i = 0; i < 8; i++) _buffer[_position++] = (byte)(u >> (8 * i));
        }

        /// <summary>A string field (UTF-8, length-delimited), omitted when null or empty.</summary>
        public void WriteString(int field, string value)
        {
            if (string.IsNullOrEmpty(value)) return;
            int length = Encoding.UTF8.GetByteCount(value);
            WriteTag(field, WireType.LengthDelimited);
            WriteVarint((ulong)length);
            _position += Encoding.UTF8.GetBytes(value, 0, value.Length, _buffer, _position);
        }

        /// <summary>
        /// Starts a sub-message: writes its tag and reserves one length byte. Returns the body's start,
        /// which <see cref="EndMessage"/> needs.
        /// </summary>
        public int BeginMessage(int field)
        {
            WriteTag(field, WireType.LengthDelimited);
            _position++;
            return _position;
        }

        /// <summary>
        /// Ends a sub-message: writes its length before the body, moving the body when the length needs
        /// more than one varint byte (bodies of 128 bytes or more; Buffer.BlockCopy handles the overlap).
        /// </summary>
        public void EndMessage(int bodyStart)
        {
            int length = _position - bodyStart;
            int lengthBytes = VarintSize((ulong)length);
            if (lengthBytes > 1)
            {
                Buffer.BlockCopy(_buffer, bodyStart, _buffer, bodyStart + lengthBytes - 1, length);
            }
            int end = _position + lengthBytes - 1;
            _position = bodyStart - 1;
            WriteVarint((ulong)length);
            _position = end;
        }

        /// <summary>Bytes a varint of this value takes (1 to 10).</summary>
        public static int VarintSize(ulong value)
        {
            int n = 1;
            while (value >= 0x80)
            {
                value >>= 7;
                n++;
            }
            return n;
        }
    }
}
