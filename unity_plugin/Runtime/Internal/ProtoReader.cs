using System.Text;

namespace StarBridge.Core
{
    /// <summary>
    /// A minimal protobuf reader (https://protobuf.dev/programming-guides/encoding/) over a byte range:
    /// tags, varints, fixed32/fixed64 and length-delimited fields. Unknown fields of any wire type but
    /// groups are skipped, so a newer backend's additions are ignored (docs/architecture.md §4). Truncated or
    /// corrupt input throws StarBridgeException (ErrorCode.Malformed). Nothing allocates except
    /// <see cref="ReadString"/>.
    /// </summary>
    public struct ProtoReader
    {
        readonly byte[] _buffer;
        int _position;
        readonly int _end;

        public ProtoReader(byte[] buffer, int offset, int length)
        {
            if (offset < 0 || length < 0 || offset + length > buffer.Length)
            {
                throw Malformed("range " + offset + "+" + length + " lies outside a " + buffer.Length + "-byte buffer");
            }
            _buffer = buffer;
            _position = offset;
            _end = offset + length;
        }

        public bool AtEnd { get { return _position >= _end; } }

        /// <summary>Reads the next tag; false at the end of the range.</summary>
        public bool ReadTag(out int field, out WireType type)
        {
            if (_position >= _end)
            {
                field = 0;
                type = WireType.Varint;
                return false;
            }
            ulong tag = ReadVarint();
            field = (int)(tag >> 3);
            type = (WireType)(tag & 7);
            if (field <= 0 || tag > 0xFFFFFFFFUL) throw Malformed("bad field number in tag " + tag);
            return true;
        }

        public ulong ReadVarint()
        {
            ulong result = 0;
            for (int shift = 0; shift < 70; shift += 7)
            {
                if (_position >= _end) throw Malformed("truncated varint");
                byte b = _buffer[_position++];
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return result;
            }
            throw Malformed("varint longer than 10 bytes");
        }

        public uint ReadFixed32()
        {
            Need(4);
            uint v = (uint)(_buffer[_position] | _buffer[_position + 1] << 8 | _buffer[_position + 2] << 16 |
                            _buffer[_position + 3] << 24);
            _position += 4;
            return v;
        }

        public ulong ReadFixed64()
        {
            Need(8);
            ulong v = 0;
            for (int i = 0; i < 8; i++) v |= (ulong)_buffer[_position + i] << (8 * i);
            _position += 8;
            return v;
        }

        public float ReadFloat()
        {
            FloatBits bits = default(FloatBits);
            bits.UInt32 = ReadFixed32();
            return bits.Single;
        }

        public double ReadDouble()
        {
            FloatBits bits = default(FloatBits);
            bits.UInt64 = ReadFixed64();
            return bits.Double;
        }

        /// <summary>Reads a length prefix and returns a reader over that many bytes, skipping them here.</summary>
        public ProtoReader ReadMessage()
        {
            int length = ReadLength();
            ProtoReader inner = new ProtoReader(_buffer, _position, length);
            _position += length;
            return inner;
        }

        public string ReadString()
        {
            int length = ReadLength();
            string s = Encoding.UTF8.GetString(_buffer, _position, length);
            _position += length;
            return s;
        }

        /// <summary>Skips a field's value of the given wire type (an unknown field).</summary>
        public void Skip(WireType type)
        {
            switch (type)
            {
                case WireType.Varint: ReadVarint(); break;
                case WireType.Fixed64: Need(8); _position += 8; break;
                case WireType.Fixed32: Need(4); _position += 4; break;
                case WireType.LengthDelimited:
                    int length = ReadLength(); // before reading _position: += would read it first
                    _position += length;
                    break;
                default: throw Malformed("unsupported wire type " + (int)type + " (groups are not used)");
            }
        }

        /// <summary>Reads a field expected to have <paramref name="expected"/> wire type, or throws.</summary>
        public void Expect(WireType actual, WireType expected, string name)
        {
            if (actual != expected) throw Malformed(name + " has wire type " + (int)actual + ", expected " + (int)expected);
        }

        int ReadLength()
        {
            ulong length = ReadVarint();
            if (length > (ulong)(_end - _position)) throw Malformed("length " + length + " runs past the message end");
            return (int)length;
        }

        void Need(int n)
        {
            if (_end - _position < n) throw Malformed("truncated fixed-width field");
        }

        static StarBridgeException Malformed(string what)
        {
            return new StarBridgeException(ErrorCode.Malformed, "malformed protobuf: " + what);
        }
    }
}
