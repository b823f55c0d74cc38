using System;
using StarBridge.Core;
using UnityEngine;

namespace StarBridge
{
    /// <summary>
    /// The backdrop's GPU resources: one texture the frames are uploaded into (recreated only when the
    /// frame size changes) and the reprojection material. Created lazily, released by Dispose.
    /// Main thread only (Unity objects).
    /// </summary>
    sealed class BackdropRenderer : IDisposable
    {
        public const string ShaderName = "Hidden/StarBridge/NeuralBackdrop";
        public const string ExposureKeyword = "STARBRIDGE_HDRP_EXPOSURE";

        static readonly int FrameId = Shader.PropertyToID("_StarBridgeFrame");
        static readonly int HomographyId = Shader.PropertyToID("_StarBridgeHomography");
        static readonly int ClipYSignId = Shader.PropertyToID("_StarBridgeClipYSign");
        static readonly int IntensityId = Shader.PropertyToID("_StarBridgeIntensity");

        readonly Shader _shader;
        Material _material;
        Texture2D _texture;
        bool _exposure;

        public BackdropRenderer(Shader shader)
        {
            _shader = shader != null ? shader : Shader.Find(ShaderName);
        }

        public Texture2D Texture { get { return _texture; } }

        public Material Material
        {
            get
            {
                if (_material == null)
                {
                    if (_shader == null)
                    {
                        throw new InvalidOperationException("StarBridge: shader " + ShaderName + " not found; reimport the package");
                    }
                    _material = new Material(_shader);
                    _material.name = "StarBridge neural backdrop";
                    _material.hideFlags = HideFlags.DontSave;
                    if (_texture != null) _material.SetTexture(FrameId, _texture);
                }
                return _material;
            }
        }

        /// <summary>
        /// Copies a frame (RGBA8, sRGB, rows top to bottom) into the texture. The frame's first row lands at
        /// v = 0, which the reprojection homography accounts for: no CPU flip, no allocation.
        /// </summary>
        public void Upload(FrameBuffer frame)
        {
            if (_texture == null || _texture.width != frame.Width || _texture.height != frame.Height)
            {
                Destroy(_texture);
                // linear: false = sRGB: sampling returns linear colour in a linear-space project.
                _texture = new Texture2D(frame.Width, frame.Height, TextureFormat.RGBA32, false, false);
                _texture.name = "StarBridge frame";
                _texture.hideFlags = HideFlags.DontSave;
                _texture.wrapMode = TextureWrapMode.Clamp;
                _texture.filterMode = FilterMode.Bilinear;
                Material.SetTexture(FrameId, _texture);
            }
            _texture.LoadRawTextureData(frame.Pixels);
            _texture.Apply(false, false);
        }

        /// <summary>Sets the homography (into the upper-left 3x3), the clip-space Y sign, brightness and exposure.</summary>
        public void SetDrawState(Mat3 h, float clipYSign, float intensity, bool cameraExposure)
        {
            Matrix4x4 m = Matrix4x4.identity;
            m.m00 = h.M00; m.m01 = h.M01; m.m02 = h.M02;
            m.m10 = h.M10; m.m11 = h.M11; m.m12 = h.M12;
            m.m20 = h.M20; m.m21 = h.M21; m.m22 = h.M22;
            Material material = Material;
            material.SetMatrix(HomographyId, m);
            material.SetFloat(ClipYSignId, clipYSign);
            material.SetFloat(IntensityId, intensity);
            if (cameraExposure != _exposure)
            {
                if (cameraExposure) material.EnableKeyword(ExposureKeyword);
                else material.DisableKeyword(ExposureKeyword);
                _exposure = cameraExposure;
            }
        }

        public void Dispose()
        {
            Destroy(_material);
            Destroy(_texture);
            _material = null;
            _texture = null;
        }

        static void Destroy(UnityEngine.Object o)
        {
            if (o == null) return;
            if (Application.isPlaying) UnityEngine.Object.Destroy(o);
            else UnityEngine.Object.DestroyImmediate(o);
        }
    }
}
