namespace StarBridge.Core
{
    /// <summary>Which BackendMessage body was decoded.</summary>
    public enum BackendMessageKind
    {
        /// <summary>An envelope with no body this client knows (a newer backend's message): ignore it.</summary>
        Unknown = 0,
        Welcome = 1,
        Frame = 2,
        Error = 3,
    }

    /// <summary>
    /// The engine-channel envelopes (engine.proto EngineMessage / BackendMessage), written and read with
    /// <see cref="ProtoWriter"/> / <see cref="ProtoReader"/>. Field numbers are engine.proto's; tests
    /// compare every message with the golden vectors in tests/golden/ byte for byte.
    /// Encoders write at <c>offset</c> and return the end position; a pose fits in
    /// <see cref="MaxPoseBytes"/> bytes, a Hello in <see cref="HelloBytes"/> for its strings.
    /// </summary>
    public static class EngineCodec
    {
        /// <summary>The largest encoded pose envelope (10-byte varints and every float set): 71 bytes.</summary>
        public const int MaxPoseBytes = 80;

        // EngineMessage body fields.
        const int EngineHello = 1, EnginePose = 2, EngineTime = 3, EngineGoodbye = 4;
        // BackendMessage body fields.
        const int BackendWelcome = 1, BackendFrame = 2, BackendError = 3;

        /// <summary>An upper bound of a Hello envelope's size.</summary>
        public static int HelloBytes(HelloRequest h)
        {
            int strings = Utf8(h.EngineName) + Utf8(h.EngineVersion) + Utf8(h.SceneId) + Utf8(h.Token) +
                          Utf8(h.ClientLabel) + Utf8(h.SessionId);
            return 96 + strings + 6 * 10;
        }

        public static int EncodeHello(byte[] buffer, int offset, HelloRequest h)
        {
            ProtoWriter w = new ProtoWriter(buffer, offset);
            int hello = w.BeginMessage(EngineHello);
            int protocol = w.BeginMessage(1);
            w.WriteUInt64(1, h.ProtocolMajor);
            w.WriteUInt64(2, h.ProtocolMinor);
            w.EndMessage(protocol);
            w.WriteString(2, h.EngineName);
            w.WriteString(3, h.EngineVersion);
            w.WriteString(4, h.SceneId);
            w.WriteUInt64(5, h.Width);
            w.WriteUInt64(6, h.Height);
            w.WriteFloat(7, h.Fps);
            w.WriteUInt64(8, (ulong)h.Transport);
            w.WriteString(9, h.Token);
            w.WriteString(10, h.ClientLabel);
            w.WriteString(11, h.SessionId);
            w.EndMessage(hello);
            return w.Position;
        }

        /// <summary>A CameraPose envelope: camera-to-world pose in the wire convention, relative to the anchor.</summary>
        public static int EncodePose(
            byte[] buffer, int offset, ulong sequence, ulong engineTimeUs, Vec3 position, Quat rotation,
            float verticalFovDeg, float aspect)
        {
            ProtoWriter w = new ProtoWriter(buffer, offset);
            int cameraPose = w.BeginMessage(EnginePose);
            w.WriteUInt64(1, sequence);
            w.WriteUInt64(2, engineTimeUs);
            int pose = w.BeginMessage(3);
            int pos = w.BeginMessage(1);
            w.WriteFloat(1, position.X);
            w.WriteFloat(2, position.Y);
            w.WriteFloat(3, position.Z);
            w.EndMessage(pos);
            int rot = w.BeginMessage(2);
            w.WriteFloat(1, rotation.X);
            w.WriteFloat(2, rotation.Y);
            w.WriteFloat(3, rotation.Z);
            w.WriteFloat(4, rotation.W);
            w.EndMessage(rot);
            w.EndMessage(pose);
            w.WriteFloat(4, verticalFovDeg);
            w.WriteFloat(5, aspect);
            w.EndMessage(cameraPose);
            return w.Position;
        }

        /// <summary>A TimeControl envelope: <paramref name="timeS"/> for Seek, <paramref name="speed"/> for SetSpeed.</summary>
        public static int EncodeTime(byte[] buffer, int offset, TimeAction action, double timeS, float speed)
        {
            ProtoWriter w = new ProtoWriter(buffer, offset);
            int time = w.BeginMessage(EngineTime);
            w.WriteUInt64(1, (ulong)action);
            w.WriteDouble(2, timeS);
            w.WriteFloat(3, speed);
            w.EndMessage(time);
            return w.Position;
        }

        /// <summary>A Goodbye envelope (an empty reason still sends the empty sub-message).</summary>
        public static int EncodeGoodbye(byte[] buffer, int offset, string reason)
        {
            ProtoWriter w = new ProtoWriter(buffer, offset);
            int goodbye = w.BeginMessage(EngineGoodbye);
            w.WriteString(1, reason);
            w.EndMessage(goodbye);
            return w.Position;
        }

        /// <summary>
        /// Decodes a BackendMessage. A FrameReady fills <paramref name="frame"/> (no allocation); a Welcome
        /// or an Error comes back as a new object. Unknown fields and bodies are skipped; malformed
        /// input throws StarBridgeException (Malformed).
        /// </summary>
        public static BackendMessageKind DecodeBackend(
            byte[] buffer, int offset, int length, ref FrameMeta frame, out WelcomeInfo welcome, out BackendError error)
        {
            welcome = null;
            error = null;
            BackendMessageKind kind = BackendMessageKind.Unknown;
            ProtoReader r = new ProtoReader(buffer, offset, length);
            int field;
            WireType type;
            while (r.ReadTag(out field, out type))
            {
                if (field == BackendWelcome && type == WireType.LengthDelimited)
                {
                    welcome = ReadWelcome(r.ReadMessage());
                    error = null;
                    kind = BackendMessageKind.Welcome;
                }
                else if (field == BackendFrame && type == WireType.LengthDelimited)
                {
                    frame = default(FrameMeta);
                    ReadFrame(r.ReadMessage(), ref frame);
                    welcome = null;
                    error = null;
                    kind = BackendMessageKind.Frame;
                }
                else if (field == BackendError && type == WireType.LengthDelimited)
                {
                    error = ReadError(r.ReadMessage());
                    welcome = null;
                    kind = BackendMessageKind.Error;
                }
                else
                {
                    r.Skip(type);
                }
            }
            return kind;
        }

        static WelcomeInfo ReadWelcome(ProtoReader r)
        {
            WelcomeInfo w = new WelcomeInfo();
            int field;
            WireType type;
            while (r.ReadTag(out field, out type))
            {
                switch (field)
                {
                    case 1: r.Expect(type, WireType.LengthDelimited, "welcome.session_id"); w.SessionId = r.ReadString(); break;
                    case 2:
                        r.Expect(type, WireType.LengthDelimited, "welcome.protocol");
                        ReadVersion(r.ReadMessage(), out w.ProtocolMajor, out w.ProtocolMinor);
                        break;
                    case 3: r.Expect(type, WireType.Varint, "welcome.width"); w.Width = (int)(uint)r.ReadVarint(); break;
                    case 4: r.Expect(type, WireType.Varint, "welcome.height"); w.Height = (int)(uint)r.ReadVarint(); break;
                    case 5: r.Expect(type, WireType.Fixed32, "welcome.fps"); w.Fps = r.ReadFloat(); break;
                    case 6: r.Expect(type, WireType.Varint, "welcome.transport"); w.Transport = (FrameTransport)(int)r.ReadVarint(); break;
                    case 7:
                        r.Expect(type, WireType.LengthDelimited, "welcome.shared_memory");
                        w.SharedMemory = ReadLayout(r.ReadMessage());
                        break;
                    case 8: r.Expect(type, WireType.LengthDelimited, "welcome.scene_id"); w.SceneId = r.ReadString(); break;
                    case 9: r.Expect(type, WireType.Fixed64, "welcome.scene_duration_s"); w.SceneDurationS = r.ReadDouble(); break;
                    case 10: r.Expect(type, WireType.Fixed32, "welcome.heartbeat_timeout_s"); w.HeartbeatTimeoutS = r.ReadFloat(); break;
                    case 11: r.Expect(type, WireType.Varint, "welcome.block_frames"); w.BlockFrames = (uint)r.ReadVarint(); break;
                    case 12: r.Expect(type, WireType.LengthDelimited, "welcome.generator"); w.Generator = r.ReadString(); break;
                    case 13: r.Expect(type, WireType.LengthDelimited, "welcome.backend_version"); w.BackendVersion = r.ReadString(); break;
                    case 14: r.Expect(type, WireType.LengthDelimited, "welcome.session_secret"); w.SessionSecret = r.ReadString(); break;
                    default: r.Skip(type); break;
                }
            }
            return w;
        }

        static SharedMemoryLayout ReadLayout(ProtoReader r)
        {
            SharedMemoryLayout s = new SharedMemoryLayout();
            int field;
            WireType type;
            while (r.ReadTag(out field, out type))
            {
                if (field == 1 && type == WireType.LengthDelimited) { s.Path = r.ReadString(); continue; }
                if (type != WireType.Varint) { r.Skip(type); continue; }
                ulong v = r.ReadVarint();
                switch (field)
                {
                    case 2: s.LayoutVersion = (uint)v; break;
                    case 3: s.HeaderBytes = (uint)v; break;
                    case 4: s.SlotCount = (uint)v; break;
                    case 5: s.SlotBytes = (uint)v; break;
                    case 6: s.SlotHeaderBytes = (uint)v; break;
                    case 7: s.Stride = (uint)v; break;
                    case 8: s.PixelFormat = (uint)v; break;
                    case 9: s.FileBytes = v; break;
                }
            }
            return s;
        }

        static void ReadFrame(ProtoReader r, ref FrameMeta f)
        {
            int field;
            WireType type;
            while (r.ReadTag(out field, out type))
            {
                switch (field)
                {
                    case 1: r.Expect(type, WireType.Varint, "frame.frame_sequence"); f.FrameSequence = r.ReadVarint(); break;
                    case 2: r.Expect(type, WireType.Varint, "frame.slot"); f.Slot = (uint)r.ReadVarint(); break;
                    case 3: r.Expect(type, WireType.Varint, "frame.pose_sequence"); f.PoseSequence = r.ReadVarint(); break;
                    case 4: r.Expect(type, WireType.Varint, "frame.engine_time_us"); f.EngineTimeUs = r.ReadVarint(); break;
                    case 5:
                        r.Expect(type, WireType.LengthDelimited, "frame.pose");
                        ReadPose(r.ReadMessage(), out f.Position, out f.Rotation);
                        break;
                    case 6: r.Expect(type, WireType.Fixed32, "frame.vertical_fov_deg"); f.VerticalFovDeg = r.ReadFloat(); break;
                    case 7: r.Expect(type, WireType.Fixed32, "frame.aspect"); f.Aspect = r.ReadFloat(); break;
                    case 8: r.Expect(type, WireType.Fixed64, "frame.scene_time_s"); f.SceneTimeS = r.ReadDouble(); break;
                    case 9: r.Expect(type, WireType.Fixed32, "frame.generation_latency_ms"); f.GenerationLatencyMs = r.ReadFloat(); break;
                    case 10: r.Expect(type, WireType.Varint, "frame.width"); f.Width = (int)(uint)r.ReadVarint(); break;
                    case 11: r.Expect(type, WireType.Varint, "frame.height"); f.Height = (int)(uint)r.ReadVarint(); break;
                    default: r.Skip(type); break;
                }
            }
        }

        static BackendError ReadError(ProtoReader r)
        {
            BackendError e = new BackendError();
            int field;
            WireType type;
            while (r.ReadTag(out field, out type))
            {
                switch (field)
                {
                    case 1: r.Expect(type, WireType.Varint, "error.code"); e.Code = (ErrorCode)(int)r.ReadVarint(); break;
                    case 2: r.Expect(type, WireType.LengthDelimited, "error.message"); e.Message = r.ReadString(); break;
                    case 3: r.Expect(type, WireType.Varint, "error.fatal"); e.Fatal = r.ReadVarint() != 0; break;
                    case 4: r.Expect(type, WireType.LengthDelimited, "error.field"); e.Field = r.ReadString(); break;
                    default: r.Skip(type); break;
                }
            }
            return e;
        }

        static void ReadVersion(ProtoReader r, out uint major, out uint minor)
        {
            major = minor = 0;
            int field;
            WireType type;
            while (r.ReadTag(out field, out type))
            {
                if (field == 1 && type == WireType.Varint) major = (uint)r.ReadVarint();
                else if (field == 2 && type == WireType.Varint) minor = (uint)r.ReadVarint();
                else r.Skip(type);
            }
        }

        static void ReadPose(ProtoReader r, out Vec3 position, out Quat rotation)
        {
            position = default(Vec3);
            rotation = default(Quat);
            int field;
            WireType type;
            while (r.ReadTag(out field, out type))
            {
                if (field == 1 && type == WireType.LengthDelimited)
                {
                    ProtoReader v = r.ReadMessage();
                    int f;
                    WireType t;
                    while (v.ReadTag(out f, out t))
                    {
                        if (t != WireType.Fixed32) { v.Skip(t); continue; }
                        float x = v.ReadFloat();
                        if (f == 1) position.X = x;
                        else if (f == 2) position.Y = x;
                        else if (f == 3) position.Z = x;
                    }
                }
                else if (field == 2 && type == WireType.LengthDelimited)
                {
                    ProtoReader q = r.ReadMessage();
                    int f;
                    WireType t;
                    while (q.ReadTag(out f, out t))
                    {
                        if (t != WireType.Fixed32) { q.Skip(t); continue; }
                        float x = q.ReadFloat();
                        if (f == 1) rotation.X = x;
                        else if (f == 2) rotation.Y = x;
                        else if (f == 3) rotation.Z = x;
                        else if (f == 4) rotation.W = x;
                    }
                }
                else
                {
                    r.Skip(type);
                }
            }
        }

        static int Utf8(string s) { return string.IsNullOrEmpty(s) ? 0 : System.Text.Encoding.UTF8.GetByteCount(s); }
    }
}
