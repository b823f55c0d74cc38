using System;
using NUnit.Framework;
using StarBridge.Core;

namespace StarBridge.Tests
{
    /// <summary>Unity to wire conversion, the scene anchor, and the reprojection homography.</summary>
    [TestFixture]
    public class ConventionTests
    {
        const float Eps = 1e-5f;
        static readonly Vec3 Up = new Vec3(0f, 1f, 0f);
        static readonly Vec3 Right = new Vec3(1f, 0f, 0f);
        static readonly Vec3 WireForward = new Vec3(0f, 0f, -1f);

        static void Near(Vec3 expected, Vec3 actual, float eps = Eps)
        {
            Assert.AreEqual(expected.X, actual.X, eps, "x of " + actual);
            Assert.AreEqual(expected.Y, actual.Y, eps, "y of " + actual);
            Assert.AreEqual(expected.Z, actual.Z, eps, "z of " + actual);
        }

        [Test]
        public void Mirroring_z_matches_the_design_and_is_its_own_inverse()
        {
            Assert.AreEqual(new Vec3(1f, 2f, -3f), WireConvention.PositionFromUnity(new Vec3(1f, 2f, 3f)));
            Assert.AreEqual(new Quat(-0.1f, -0.2f, 0.3f, 0.9f), WireConvention.RotationFromUnity(new Quat(0.1f, 0.2f, 0.3f, 0.9f)));
            Quat q = new Quat(0.1f, -0.7f, 0.3f, 0.6f);
            Assert.AreEqual(q, WireConvention.RotationToUnity(WireConvention.RotationFromUnity(q)));
        }

        [Test]
        public void A_unity_camera_turning_right_turns_right_on_the_wire()
        {
            // Unity: +30 degrees about +Y turns the +Z forward towards +X (right); the wire camera looks down -Z.
            Quat wire = WireConvention.RotationFromUnity(Quat.AxisAngle(Up, 30f));
            Near(new Vec3(0.5f, 0f, -0.8660254f), wire.Rotate(WireForward));
            Near(new Vec3(0f, 1f, 0f), wire.Rotate(Up));
        }

        [Test]
        public void A_unity_camera_pitching_up_pitches_up_on_the_wire()
        {
            // Unity: -20 degrees about +X raises the forward vector (left-handed rotation).
            Quat wire = WireConvention.RotationFromUnity(Quat.AxisAngle(Right, -20f));
            Vec3 forward = wire.Rotate(WireForward);
            Assert.Greater(forward.Y, 0.3f);
            Assert.AreEqual(Math.Sin(20 * Math.PI / 180), forward.Y, Eps);
        }

        [Test]
        public void Poses_are_relative_to_the_anchor_and_its_scale()
        {
            // Anchor at (10, 0, 0) turned 90 degrees right (its +Z is world +X), 2 Unity units per scene metre.
            Quat anchorRotation = Quat.AxisAngle(Up, 90f);
            Vec3 anchor = new Vec3(10f, 0f, 0f);
            // A camera 4 units in front of the anchor, 2 up, looking the way the anchor looks.
            Vec3 camera = new Vec3(14f, 2f, 0f);
            Vec3 position;
            Quat rotation;
            WireConvention.AnchorRelative(camera, anchorRotation, anchor, anchorRotation, 2f, out position, out rotation);
            Near(new Vec3(0f, 1f, -2f), position); // 2 m ahead (wire -Z) and 1 m up
            Near(WireForward, rotation.Rotate(WireForward));
            Assert.AreEqual(1f, rotation.Length(), Eps);
        }

        [Test]
        public void The_same_pose_maps_screen_to_texture_with_rows_top_down()
        {
            Mat3 h = Reprojection.Homography(Quat.Identity, 60f, 16f / 9f, Quat.Identity, 60f, 16f / 9f);
            float u, v;
            Assert.IsTrue(Reprojection.Apply(h, 0f, 0f, out u, out v));
            Assert.AreEqual(0.5f, u, Eps);
            Assert.AreEqual(0.5f, v, Eps);
            Assert.IsTrue(Reprojection.Apply(h, -1f, 1f, out u, out v)); // top left of the screen
            Assert.AreEqual(0f, u, Eps);
            Assert.AreEqual(0f, v, Eps); // the frame's first row
            Assert.IsTrue(Reprojection.Apply(h, 1f, -1f, out u, out v));
            Assert.AreEqual(1f, u, Eps);
            Assert.AreEqual(1f, v, Eps);
        }

        [Test]
        public void Turning_right_after_generation_samples_right_of_centre()
        {
            float fov = 60f, aspect = 1.5f;
            Quat generated = WireConvention.RotationFromUnity(Quat.AxisAngle(Up, 0f));
            Quat now = WireConvention.RotationFromUnity(Quat.AxisAngle(Up, 10f));
            Mat3 h = Reprojection.Homography(generated, fov, aspect, now, fov, aspect);
            float u, v;
            Assert.IsTrue(Reprojection.Apply(h, 0f, 0f, out u, out v));
            double tg = Math.Tan(fov * Math.PI / 360);
            Assert.AreEqual(0.5 + 0.5 * Math.Tan(10 * Math.PI / 180) / (tg * aspect), u, 1e-5);
            Assert.AreEqual(0.5f, v, Eps);
        }

        [Test]
        public void Looking_up_after_generation_samples_above_centre()
        {
            Quat generated = Quat.Identity;
            Quat now = WireConvention.RotationFromUnity(Quat.AxisAngle(Right, -10f));
            Mat3 h = Reprojection.Homography(generated, 50f, 1f, now, 50f, 1f);
            float u, v;
            Assert.IsTrue(Reprojection.Apply(h, 0f, 0f, out u, out v));
            Assert.AreEqual(0.5f, u, Eps);
            Assert.Less(v, 0.5f); // nearer the frame's top rows
        }

        [Test]
        public void Directions_behind_the_generation_camera_are_rejected()
        {
            Mat3 h = Reprojection.Homography(Quat.Identity, 60f, 1f, Quat.AxisAngle(Up, 180f), 60f, 1f);
            float u, v;
            Assert.IsFalse(Reprojection.Apply(h, 0f, 0f, out u, out v));
        }

        [Test]
        public void The_homography_agrees_with_projecting_world_directions([Values(0, 1, 2, 3, 4)] int seed)
        {
            Random random = new Random(seed);
            Func<Quat> randomRotation = () => new Quat((float)random.NextDouble() - 0.5f, (float)random.NextDouble() - 0.5f,
                                                       (float)random.NextDouble() - 0.5f, (float)random.NextDouble() + 0.5f).Normalized();
            Quat g = randomRotation(), c = randomRotation();
            float fovG = 40f + 40f * (float)random.NextDouble(), fovC = 40f + 40f * (float)random.NextDouble();
            float aspectG = 1f + (float)random.NextDouble(), aspectC = 1f + (float)random.NextDouble();
            Mat3 h = Reprojection.Homography(g, fovG, aspectG, c, fovC, aspectC);
            for (int i = 0; i < 20; i++)
            {
                float x = 2f * (float)random.NextDouble() - 1f, y = 2f * (float)random.NextDouble() - 1f;
                // the current camera's ray through (x, y), in the world
                double tc = Math.Tan(fovC * Math.PI / 360);
                Vec3 world = c.Rotate(new Vec3((float)(x * tc * aspectC), (float)(y * tc), -1f));
                Vec3 local = g.Conjugate().Rotate(world);
                float u, v;
                bool inFront = Reprojection.Apply(h, x, y, out u, out v);
                Assert.AreEqual(local.Z < 0f, inFront);
                if (!inFront) continue;
                double tg = Math.Tan(fovG * Math.PI / 360);
                Assert.AreEqual(0.5 + 0.5 * (local.X / -local.Z) / (tg * aspectG), u, 1e-3);
                Assert.AreEqual(0.5 - 0.5 * (local.Y / -local.Z) / tg, v, 1e-3);
            }
        }
    }
}
