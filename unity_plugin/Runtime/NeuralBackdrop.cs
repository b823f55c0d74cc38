using System.Collections.Generic;
using StarBridge.Core;
using UnityEngine;
using UnityEngine.Rendering;

namespace StarBridge
{
    /// <summary>
    /// Shows the StarBridge neural world behind everything this camera renders (docs/architecture.md §5).
    /// In play mode it connects to the backend, sends the camera pose (relative to the scene anchor) every
    /// frame, uploads the newest generated frame into one reused texture, and draws it behind all
    /// geometry, reprojected from the pose it was generated for to the current camera rotation. When the
    /// backend goes away the last frame stays on screen and the component reconnects by itself.
    ///
    /// Drawing: the Built-in pipeline needs nothing more; URP needs the "StarBridge Neural Backdrop" renderer
    /// feature on the renderer; HDRP needs the "Neural Backdrop" custom pass (registered by itself on Unity 6).
    /// </summary>
    [DisallowMultipleComponent]
    [RequireComponent(typeof(Camera))]
    [AddComponentMenu("StarBridge/Neural Backdrop")]
    [DefaultExecutionOrder(1000)] // LateUpdate after camera controllers: the pose sent is the one this frame renders
    public sealed partial class NeuralBackdrop : MonoBehaviour
    {
        static readonly List<NeuralBackdrop> s_active = new List<NeuralBackdrop>();

        Camera _camera;
        BackdropClient _client;
        BackdropRenderer _renderer;
        CommandBuffer _builtinCommands;
        bool _builtinFilled;
        FrameMeta _shown;
        bool _hasFrame;
        int _lastDrawnFrame = -1;
        string _settingsError;
        string _connectedKey;

        /// <summary>The active backdrop drawn for <paramref name="camera"/>, or null. No allocation.</summary>
        public static NeuralBackdrop ForCamera(Camera camera)
        {
            for (int i = 0; i < s_active.Count; i++)
            {
                if (s_active[i]._camera == camera) return s_active[i];
            }
            return null;
        }

        void OnEnable()
        {
            _camera = GetComponent<Camera>();
            s_active.Add(this);
            if (Application.isPlaying) Connect();
            if (GraphicsSettings.currentRenderPipeline == null) AttachBuiltin();
        }

        void OnDisable()
        {
            DetachBuiltin();
            s_active.Remove(this);
            Disconnect("component disabled");
        }

        void OnDestroy()
        {
            if (_renderer != null) _renderer.Dispose();
            _renderer = null;
        }

        void OnValidate()
        {
            if (_client != null && Application.isPlaying && isActiveAndEnabled)
            {
                SettingsChanged();
                ApplyClock();
            }
        }

        void LateUpdate()
        {
            if (_client == null) return;
            Vec3 position;
            Quat rotation;
            WirePose(_camera.transform, out position, out rotation);
            _client.SubmitPose(position, rotation, _camera.fieldOfView, _camera.aspect);
            FrameBuffer frame;
            if (_client.TryTakeFrame(out frame))
            {
                if (_renderer == null) _renderer = new BackdropRenderer(_shader);
                _renderer.Upload(frame);
                _shown = frame.Meta;
                _hasFrame = true;
            }
        }

        // Built-in pipeline: called for the camera this component sits on, before it renders.
        void OnPreRender()
        {
            if (_builtinCommands == null) return;
            Material material = PrepareDraw(_camera, 0f, false);
            if (material != null && !_builtinFilled)
            {
                _builtinCommands.DrawProcedural(Matrix4x4.identity, material, 0, MeshTopology.Triangles, 3, 1);
                _builtinFilled = true;
            }
        }

        /// <summary>
        /// Sets the backdrop material up for <paramref name="camera"/> (the homography from the shown frame's
        /// generation pose to the camera's current rotation) and returns it, or null when there is nothing to
        /// draw yet. Render pipeline passes call this, then draw a full-screen triangle (3 vertices, pass 0).
        /// <paramref name="clipYSign"/>: -1 or 1 when the pipeline knows whether it renders upside down
        /// (HDRP), 0 to let the shader use _ProjectionParams.x (Built-in, URP). <paramref name="cameraExposure"/>:
        /// multiply by HDRP's exposure texture.
        /// </summary>
        public Material PrepareDraw(Camera camera, float clipYSign, bool cameraExposure)
        {
            if (!_hasFrame || _renderer == null) return null;
            Mat3 h;
            float aspect = camera.aspect;
            if (_reproject)
            {
                Vec3 position;
                Quat current;
                WirePose(camera.transform, out position, out current);
                h = Reprojection.Homography(_shown.Rotation, _shown.VerticalFovDeg, _shown.EffectiveAspect,
                                            current, camera.fieldOfView, aspect);
            }
            else
            {
                h = Reprojection.Homography(Quat.Identity, 60f, 1f, Quat.Identity, 60f, 1f); // the frame as is, full screen
            }
            _renderer.SetDrawState(h, clipYSign, _intensity, cameraExposure);
            _lastDrawnFrame = Time.frameCount;
            return _renderer.Material;
        }

        /// <summary>Scene clock: play from the current time.</summary>
        public void Play() { Paused = false; }

        /// <summary>Scene clock: freeze (the camera can still roam).</summary>
        public void Pause() { Paused = true; }

        /// <summary>Scene clock: jump to <paramref name="seconds"/> (wrapped into the scene when it loops).</summary>
        public void Seek(float seconds)
        {
            if (_client != null) _client.Seek(seconds);
        }

        /// <summary>Skips the reconnection delay (or leaves the Refused state) and tries again now.</summary>
        public void Reconnect()
        {
            if (_client != null) _client.Reconnect();
        }

        /// <summary>
        /// The settings a client for this component uses (the inspector's "Test connection" too). Size and rate pass
        /// through as set: 0 asks for the backend's default, and a negative one fails BackdropSettings.Validate.
        /// </summary>
        public BackdropSettings CreateSettings()
        {
            return new BackdropSettings
            {
                Endpoint = _serverAddress,
                SceneId = _sceneId,
                Width = _resolution.x,
                Height = _resolution.y,
                Fps = _frameRate,
                Transport = (FrameTransport)_transport,
                Token = _token,
                EngineName = "Unity",
                EngineVersion = Application.unityVersion,
                ClientLabel = name,
            };
        }

        void Connect()
        {
            BackdropSettings settings = CreateSettings();
            try
            {
                _client = new BackdropClient(settings);
            }
            catch (System.ArgumentException e)
            {
                _settingsError = "settings: " + e.Message;
                Debug.LogError("StarBridge " + name + ": " + _settingsError, this);
                return;
            }
            _settingsError = null;
            _connectedKey = SettingsKey();
            ApplyClock();
            _client.Start();
        }

        void Disconnect(string reason)
        {
            if (_client == null) return;
            _client.Stop(reason); // bounded: says Goodbye, waits at most BackdropClient.StopTimeoutMs
            _client = null;
        }

        void SettingsChanged()
        {
            if (!Application.isPlaying || !isActiveAndEnabled) return;
            if (_client != null && SettingsKey() == _connectedKey) return;
            Disconnect("settings changed");
            Connect(); // the last frame stays on screen until the new session's first frame
        }

        string SettingsKey()
        {
            return _serverAddress + "|" + _sceneId + "|" + _resolution.x + "x" + _resolution.y + "|" + _frameRate + "|" +
                   _transport + "|" + _token;
        }

        void ApplyClock()
        {
            if (_client == null) return;
            if (_client.Paused != _paused)
            {
                if (_paused) _client.Pause();
                else _client.Play();
            }
            if (_client.Speed != _playbackSpeed) _client.SetSpeed(_playbackSpeed);
        }

        /// <summary>A transform's pose relative to the scene anchor, in the wire convention (docs/architecture.md §3).</summary>
        void WirePose(Transform t, out Vec3 position, out Quat rotation)
        {
            Vector3 p = t.position;
            Quaternion q = t.rotation;
            Vec3 anchorPosition = new Vec3(0f, 0f, 0f);
            Quat anchorRotation = Quat.Identity;
            if (_sceneAnchor != null)
            {
                Vector3 ap = _sceneAnchor.position;
                Quaternion aq = _sceneAnchor.rotation;
                anchorPosition = new Vec3(ap.x, ap.y, ap.z);
                anchorRotation = new Quat(aq.x, aq.y, aq.z, aq.w);
            }
            WireConvention.AnchorRelative(new Vec3(p.x, p.y, p.z), new Quat(q.x, q.y, q.z, q.w), anchorPosition,
                                          anchorRotation, _sceneScale, out position, out rotation);
        }

        void AttachBuiltin()
        {
            _builtinCommands = new CommandBuffer();
            _builtinCommands.name = "StarBridge neural backdrop";
            _builtinFilled = false;
            // After the skybox: the backdrop covers it, and the far-plane depth test keeps all geometry in front.
            _camera.AddCommandBuffer(CameraEvent.AfterSkybox, _builtinCommands);
        }

        void DetachBuiltin()
        {
            if (_builtinCommands == null) return;
            if (_camera != null) _camera.RemoveCommandBuffer(CameraEvent.AfterSkybox, _builtinCommands);
            _builtinCommands.Release();
            _builtinCommands = null;
        }
    }
}
