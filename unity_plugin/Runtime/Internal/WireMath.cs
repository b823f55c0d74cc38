using System;

namespace StarBridge.Core
{
    /// <summary>A 3-vector of floats (engine.proto Vec3): metres in scene space.</summary>
    [Serializable]
    public struct Vec3
    {
        public float X, Y, Z;

        public Vec3(float x, float y, float z) { X = x; Y = y; Z = z; }

        public static Vec3 operator -(Vec3 a, Vec3 b) { return new Vec3(a.X - b.X, a.Y - b.Y, a.Z - b.Z); }
        public static Vec3 operator *(Vec3 a, float s) { return new Vec3(a.X * s, a.Y * s, a.Z * s); }

        public override string ToString() { return "(" + X + ", " + Y + ", " + Z + ")"; }
    }

    /// <summary>A rotation as a unit quaternion (x, y, z, w) (engine.proto Quat).</summary>
    [Serializable]
    public struct Quat
    {
        public float X, Y, Z, W;

        public Quat(float x, float y, float z, float w) { X = x; Y = y; Z = z; W = w; }

        public static Quat Identity { get { return new Quat(0f, 0f, 0f, 1f); } }

        /// <summary>The rotation by <paramref name="degrees"/> about a unit <paramref name="axis"/>.</summary>
        public static Quat AxisAngle(Vec3 axis, float degrees)
        {
            double half = degrees * Math.PI / 360.0;
            float s = (float)Math.Sin(half);
            return new Quat(axis.X * s, axis.Y * s, axis.Z * s, (float)Math.Cos(half));
        }

        /// <summary>Hamilton product: the rotation <paramref name="b"/> followed by <paramref name="a"/>.</summary>
        public static Quat operator *(Quat a, Quat b)
        {
            return new Quat(
                a.W * b.X + a.X * b.W + a.Y * b.Z - a.Z * b.Y,
                a.W * b.Y - a.X * b.Z + a.Y * b.W + a.Z * b.X,
                a.W * b.Z + a.X * b.Y - a.Y * b.X + a.Z * b.W,
                a.W * b.W - a.X * b.X - a.Y * b.Y - a.Z * b.Z);
        }

        /// <summary>The inverse of a unit quaternion (its conjugate).</summary>
        public Quat Conjugate() { return new Quat(-X, -Y, -Z, W); }

        public float Length() { return (float)Math.Sqrt(X * X + Y * Y + Z * Z + W * W); }

        /// <summary>This quaternion scaled to unit length (identity when it is all zeros).</summary>
        public Quat Normalized()
        {
            float n = Length();
            if (n < 1e-12f || float.IsNaN(n)) return Identity;
            return new Quat(X / n, Y / n, Z / n, W / n);
        }

        /// <summary><paramref name="v"/> rotated by this (unit) quaternion.</summary>
        public Vec3 Rotate(Vec3 v)
        {
            Mat3 m = Mat3.FromRotation(this);
            return m.Multiply(v);
        }

        public override string ToString() { return "(" + X + ", " + Y + ", " + Z + ", " + W + ")"; }
    }

    /// <summary>A 3x3 matrix, row major: <c>M[row, column]</c> is field M{row}{column}.</summary>
    public struct Mat3
    {
        public float M00, M01, M02, M10, M11, M12, M20, M21, M22;

        /// <summary>The rotation matrix of a unit quaternion.</summary>
        public static Mat3 FromRotation(Quat q)
        {
            float x = q.X, y = q.Y, z = q.Z, w = q.W;
            Mat3 m;
            m.M00 = 1 - 2 * (y * y + z * z); m.M01 = 2 * (x * y - z * w); m.M02 = 2 * (x * z + y * w);
            m.M10 = 2 * (x * y + z * w); m.M11 = 1 - 2 * (x * x + z * z); m.M12 = 2 * (y * z - x * w);
            m.M20 = 2 * (x * z - y * w); m.M21 = 2 * (y * z + x * w); m.M22 = 1 - 2 * (x * x + y * y);
            return m;
        }

        public static Mat3 Diagonal(float a, float b, float c)
        {
            Mat3 m = default(Mat3);
            m.M00 = a; m.M11 = b; m.M22 = c;
            return m;
        }

        public static Mat3 operator *(Mat3 a, Mat3 b)
        {
            Mat3 m;
            m.M00 = a.M00 * b.M00 + a.M01 * b.M10 + a.M02 * b.M20;
            m.M01 = a.M00 * b.M01 + a.M01 * b.M11 + a.M02 * b.M21;
            m.M02 = a.M00 * b.M02 + a.M01 * b.M12 + a.M02 * b.M22;
            m.M10 = a.M10 * b.M00 + a.M11 * b.M10 + a.M12 * b.M20;
            m.M11 = a.M10 * b.M01 + a.M11 * b.M11 + a.M12 * b.M21;
            m.M12 = a.M10 * b.M02 + a.M11 * b.M12 + a.M12 * b.M22;
            m.M20 = a.M20 * b.M00 + a.M21 * b.M10 + a.M22 * b.M20;
            m.M21 = a.M20 * b.M01 + a.M21 * b.M11 + a.M22 * b.M21;
            m.M22 = a.M20 * b.M02 + a.M21 * b.M12 + a.M22 * b.M22;
            return m;
        }

        public Mat3 Transposed()
        {
            Mat3 m;
            m.M00 = M00; m.M01 = M10; m.M02 = M20;
            m.M10 = M01; m.M11 = M11; m.M12 = M21;
            m.M20 = M02; m.M21 = M12; m.M22 = M22;
            return m;
        }

        public Vec3 Multiply(Vec3 v)
        {
            return new Vec3(
                M00 * v.X + M01 * v.Y + M02 * v.Z,
                M10 * v.X + M11 * v.Y + M12 * v.Z,
                M20 * v.X + M21 * v.Y + M22 * v.Z);
        }
    }

    /// <summary>
    /// Camera conventions (docs/architecture.md §3). The wire is right-handed, +Y up, a camera looking down
    /// its local -Z; Unity is left-handed with +Z forward. Converting mirrors the world Z axis:
    /// position z -> -z, quaternion (x, y, z, w) -> (-x, -y, z, w); the same formulas map both ways.
    /// </summary>
    public static class WireConvention
    {
        /// <summary>A Unity position (world or anchor-relative) in the wire convention.</summary>
        public static Vec3 PositionFromUnity(Vec3 unity) { return new Vec3(unity.X, unity.Y, -unity.Z); }

        /// <summary>A Unity rotation in the wire convention (a mirror is its own inverse).</summary>
        public static Quat RotationFromUnity(Quat unity) { return new Quat(-unity.X, -unity.Y, unity.Z, unity.W); }

        /// <summary>A wire position in Unity's convention.</summary>
        public static Vec3 PositionToUnity(Vec3 wire) { return PositionFromUnity(wire); }

        /// <summary>A wire rotation in Unity's convention.</summary>
        public static Quat RotationToUnity(Quat wire) { return RotationFromUnity(wire); }

        /// <summary>
        /// The camera pose relative to the scene anchor, in the wire convention: the anchor's position and
        /// rotation (Unity world space) are the scene's origin, and <paramref name="sceneScale"/> Unity
        /// units make one scene metre. Rotations are normalised, so float drift never trips the backend's
        /// unit-quaternion check.
        /// </summary>
        public static void AnchorRelative(
            Vec3 cameraPosition, Quat cameraRotation, Vec3 anchorPosition, Quat anchorRotation, float sceneScale,
            out Vec3 wirePosition, out Quat wireRotation)
        {
            Quat inverseAnchor = anchorRotation.Normalized().Conjugate();
            Vec3 local = inverseAnchor.Rotate(cameraPosition - anchorPosition) * (1f / sceneScale);
            Quat localRotation = (inverseAnchor * cameraRotation.Normalized()).Normalized();
            wirePosition = PositionFromUnity(local);
            wireRotation = RotationFromUnity(localRotation);
        }
    }

    /// <summary>
    /// The rotation-only homography that redraws a frame generated for one camera pose as the current
    /// camera sees it (docs/architecture.md §5): correct for a backdrop at infinity, and for any depth when
    /// the camera only turned. The reprojection shader does exactly this per pixel.
    /// </summary>
    public static class Reprojection
    {
        /// <summary>
        /// The 3x3 matrix H mapping the current camera's normalised device coordinates (x right, y up, both
        /// in [-1, 1]) as (x, y, 1) to homogeneous texture coordinates of the generated frame: u = h.x / h.z,
        /// v = h.y / h.z, where u runs left to right and v runs over the frame's rows from top (v = 0) to
        /// bottom (v = 1), which is also where <c>LoadRawTextureData</c> puts them (the frame's first row at
        /// v = 0), so the shader samples (u, v) directly: the row flip lives in H. h.z &lt;= 0 means the
        /// direction is behind the generation camera.
        /// Rotations are camera-to-world in one frame (both wire convention, both anchor-relative);
        /// aspects are width / height; the generation aspect 0 means the frame's own.
        /// </summary>
        public static Mat3 Homography(
            Quat generationRotation, float generationFovDeg, float generationAspect,
            Quat currentRotation, float currentFovDeg, float currentAspect)
        {
            float tc = (float)Math.Tan(currentFovDeg * Math.PI / 360.0);
            float tg = (float)Math.Tan(generationFovDeg * Math.PI / 360.0);
            // 1. current NDC -> direction in the current camera's frame (looking down -Z)
            Mat3 screenToCamera = Mat3.Diagonal(tc * currentAspect, tc, -1f);
            // 2. current camera -> world -> generation camera
            Mat3 relative = Mat3.FromRotation(generationRotation.Normalized()).Transposed() *
                            Mat3.FromRotation(currentRotation.Normalized());
            // 3. generation camera direction d -> (u w, v w, w) with w = -d.z:
            //    u = (1 + x_ndc) / 2, v = (1 - y_ndc) / 2, x_ndc = d.x / (-d.z) / (tg a), y_ndc = d.y / (-d.z) / tg
            Mat3 cameraToTexture = default(Mat3);
            cameraToTexture.M00 = 0.5f / (tg * generationAspect);
            cameraToTexture.M02 = -0.5f;
            cameraToTexture.M11 = -0.5f / tg;
            cameraToTexture.M12 = -0.5f;
            cameraToTexture.M22 = -1f;
            return cameraToTexture * relative * screenToCamera;
        }

        /// <summary>
        /// Where the current camera's NDC point (x, y) lands in the generated frame, as texture coordinates
        /// (u left to right, v top to bottom); false when it is behind the generation camera.
        /// </summary>
        public static bool Apply(Mat3 h, float x, float y, out float u, out float v)
        {
            Vec3 p = h.Multiply(new Vec3(x, y, 1f));
            if (p.Z <= 1e-6f)
            {
                u = v = 0f;
                return false;
            }
            u = p.X / p.Z;
            v = p.Y / p.Z;
            return true;
        }
    }
}
