using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>The protobuf writer and reader on their own: varints, sub-message lengths, unknown and malformed input.</summary>
    [TestFixture]
    public class ProtobufTests
    {
        [TestCase(0UL, "00")]
        [TestCase(1UL, "01")]
        [TestCase(127UL, "7f")]
        [TestCase(128UL, "8001")]
        [TestCase(300UL, "ac02")]
        [TestCase(4294967296UL, "8080808010")]
        [TestCase(ulong.MaxValue, "ffffffffffffffffff01")]
        public void Varints_round_trip(ulong value, string hex)
        {
            byte[] b = new byte[16];
            ProtoWriter w = new ProtoWriter(b, 0);
            w.WriteVarint(value);
            Assert.AreEqual(hex, Hex.Of(b, 0, w.Position));
            Assert.AreEqual(hex.Length / 2, ProtoWriter.VarintSize(value));
            ProtoReader r = new ProtoReader(b, 0, w.Position);
            Assert.AreEqual(value, r.ReadVarint());
            Assert.IsTrue(r.AtEnd);
        }

        [Test]
        public void Long_sub_messages_get_multi_byte_lengths()
        {
            // A 200-byte body needs a 2-byte length: the writer moves the body after writing it.
            byte[] b = new byte[512];
            ProtoWriter w = new ProtoWriter(b, 0);
            int start = w.BeginMessage(4);
            string text = new string('x', 197);
            w.WriteString(1, text); // tag 1 + length 2 + 197 = 200 bytes
            w.EndMessage(start);
            Assert.AreEqual("22c8010ac501", Hex.Of(b, 0, 6));
            Assert.AreEqual(3 + 200, w.Position);
            ProtoReader r = new ProtoReader(b, 0, w.Position);
            int field;
            WireType type;
            Assert.IsTrue(r.ReadTag(out field, out type));
            Assert.AreEqual(4, field);
            ProtoReader inner = r.ReadMessage();
            Assert.IsTrue(inner.ReadTag(out field, out type));
            Assert.AreEqual(text, inner.ReadString());
            Assert.IsTrue(r.AtEnd);
        }

        [Test]
        public void Negative_zero_is_written_and_positive_zero_omitted()
        {
            // proto3 omits defaults by value bits, as the protobuf runtime does: -0.0 is not the default.
            byte[] b = new byte[16];
            ProtoWriter w = new ProtoWriter(b, 0);
            w.WriteFloat(1, 0f);
            w.WriteFloat(1, -0f);
            Assert.AreEqual("0d00000080", Hex.Of(b, 0, w.Position));
        }

        [Test]
        public void Unknown_fields_of_every_wire_type_are_skipped()
        {
            // FrameReady { frame_sequence: 5, <99: varint 7>, <98: fixed64>, <97: "abc">, <96: fixed32>, width: 8 }
            byte[] frame = Hex.Parse("0805" + "980607" + "91060102030405060708" + "8a0603616263" + "850601020304" + "5008");
            byte[] envelope = new byte[frame.Length + 2 + 4];
            envelope[0] = 0x12;
            envelope[1] = (byte)frame.Length;
            System.Buffer.BlockCopy(frame, 0, envelope, 2, frame.Length);
            // and an unknown field in the envelope itself: <50: varint 1>
            envelope[frame.Length + 2] = 0x90;
            envelope[frame.Length + 3] = 0x03;
            envelope[frame.Length + 4] = 0x01;
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Frame, EngineCodec.DecodeBackend(envelope, 0, frame.Length + 5, ref f, out w, out e));
            Assert.AreEqual(5UL, f.FrameSequence);
            Assert.AreEqual(8, f.Width);
        }

        [Test]
        public void An_envelope_with_an_unknown_body_decodes_as_unknown()
        {
            byte[] envelope = Hex.Parse("2a020801"); // BackendMessage field 5: a body from a newer backend
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            Assert.AreEqual(BackendMessageKind.Unknown, EngineCodec.DecodeBackend(envelope, 0, envelope.Length, ref f, out w, out e));
        }

        [TestCase("12", TestName = "Truncated_tag_body")]
        [TestCase("120a0801", TestName = "Length_past_the_end")]
        [TestCase("12020880", TestName = "Truncated_varint")]
        [TestCase("120335000070", TestName = "Truncated_fixed32")]
        [TestCase("12029b06", TestName = "Unknown_group_field")]
        [TestCase("12020b01", TestName = "Field_with_wrong_wire_type")]
        [TestCase("00", TestName = "Field_number_zero")]
        public void Malformed_input_throws_malformed(string hex)
        {
            byte[] data = Hex.Parse(hex);
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            StarBridgeException ex = Assert.Throws<StarBridgeException>(
                () => EngineCodec.DecodeBackend(data, 0, data.Length, ref f, out w, out e));
            Assert.AreEqual(ErrorCode.Malformed, ex.Code);
            StringAssert.StartsWith("malformed protobuf: ", ex.Message);
        }

        [Test]
        public void Decoding_a_frame_allocates_nothing()
        {
            byte[] envelope = Hex.Parse("125e088780808010100218858080801020c0c480c1c1c482032a270a0f0d0000c0bf150000803e1d000080c012140d000000bf150000003f1d0000003f250000003f35000070423d0000e03f410000000000000a404d0000484150800458a002");
            byte[] pose = new byte[EngineCodec.MaxPoseBytes];
            FrameMeta f = default(FrameMeta);
            WelcomeInfo w;
            BackendError e;
            EngineCodec.DecodeBackend(envelope, 0, envelope.Length, ref f, out w, out e); // warm up (JIT)
            EngineCodec.EncodePose(pose, 0, 1, 2, f.Position, f.Rotation, 60f, 1f);
            long before = Allocations.CurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                EngineCodec.DecodeBackend(envelope, 0, envelope.Length, ref f, out w, out e);
                EngineCodec.EncodePose(pose, 0, (ulong)i, 2, f.Position, f.Rotation, 60f, 1f);
            }
            Assert.AreEqual(0L, Allocations.CurrentThread() - before);
        }
    }
}
