using StarBridge.Core;
using UnityEngine;

namespace StarBridge
{
    /// <summary>How frames travel from the backend to this engine.</summary>
    public enum BackdropTransport
    {
        /// <summary>A memory-mapped frame ring: the backend runs on this machine (fastest; falls back to Inline otherwise).</summary>
        SharedMemory = FrameTransport.SharedMemory,
        /// <summary>Pixels inside the ZeroMQ messages: works with a backend on another machine.</summary>
        Inline = FrameTransport.Inline,
    }

    // Serialized settings and the public properties of NeuralBackdrop. Changing a connection setting
    // while playing reconnects with the new value; clock settings apply at once.
    public sealed partial class NeuralBackdrop
    {
        [Tooltip("The backend's engine channel: host:port (start it with `starbridge serve`).")]
        [SerializeField] string _serverAddress = "127.0.0.1:50052";

        [Tooltip("Scene id to roam in. Empty: the backend's default scene (the demo).")]
        [SerializeField] string _sceneId = "";

        [Tooltip("Frame size in pixels. 0 x 0 (the default): the backend's size (starbridge serve --width/--height, " +
                 "512 x 288 unless set). The backend may round it; the texture takes the size Welcome agrees. Not negative.")]
        [SerializeField] Vector2Int _resolution = new Vector2Int(0, 0);

        [Tooltip("Frames per second the backend generates. 0 (the default): its rate (starbridge serve --fps, 30 unless set).")]
        [SerializeField, Range(0f, 120f)] float _frameRate = 0f;

        [Tooltip("Shared memory when the backend runs on this machine, Inline otherwise.")]
        [SerializeField] BackdropTransport _transport = BackdropTransport.SharedMemory;

        [Tooltip("Access token, when the backend was started with --token.")]
        [SerializeField] string _token = "";

        [Tooltip("The neural world's origin and orientation in this level. Empty: the world origin.")]
        [SerializeField] Transform _sceneAnchor = null;

        [Tooltip("Unity units per scene metre: 2 makes the neural world twice as large.")]
        [SerializeField, Min(0.0001f)] float _sceneScale = 1f;

        [Tooltip("Redraw each frame for the current camera rotation, so the backdrop stays locked to the world while frames are late.")]
        [SerializeField] bool _reproject = true;

        [Tooltip("Brightness multiplier of the backdrop (HDRP: on top of the camera exposure).")]
        [SerializeField, Min(0f)] float _intensity = 1f;

        [Tooltip("Freeze the scene's clock: the reference video stops, the camera can still roam.")]
        [SerializeField] bool _paused = false;

        [Tooltip("Scene clock speed: 1 plays the reference video in real time.")]
        [SerializeField, Range(0.01f, 8f)] float _playbackSpeed = 1f;

        [SerializeField, HideInInspector] Shader _shader = null;

        public string ServerAddress { get { return _serverAddress; } set { _serverAddress = value; SettingsChanged(); } }
        public string SceneId { get { return _sceneId; } set { _sceneId = value; SettingsChanged(); } }
        /// <summary>
        /// Wanted frame size in pixels; (0, 0), the default, asks for the backend's own (starbridge serve --width/--height).
        /// Both 0 or both set, never negative. The size in use is Status.Welcome's (and <see cref="Texture"/>'s).
        /// </summary>
        public Vector2Int Resolution { get { return _resolution; } set { _resolution = value; SettingsChanged(); } }
        /// <summary>Wanted frames per second; 0, the default, asks for the backend's own (starbridge serve --fps).</summary>
        public float FrameRate { get { return _frameRate; } set { _frameRate = value; SettingsChanged(); } }
        public BackdropTransport Transport { get { return _transport; } set { _transport = value; SettingsChanged(); } }
        public string Token { get { return _token; } set { _token = value; SettingsChanged(); } }
        public Transform SceneAnchor { get { return _sceneAnchor; } set { _sceneAnchor = value; } }
        public float SceneScale { get { return _sceneScale; } set { _sceneScale = Mathf.Max(0.0001f, value); } }
        public bool Reproject { get { return _reproject; } set { _reproject = value; } }
        public float Intensity { get { return _intensity; } set { _intensity = Mathf.Max(0f, value); } }

        /// <summary>Whether the scene clock is frozen (the camera can still roam).</summary>
        public bool Paused
        {
            get { return _paused; }
            set
            {
                _paused = value;
                ApplyClock();
            }
        }

        /// <summary>Scene clock speed, 0.01 to 8 (1: real time).</summary>
        public float PlaybackSpeed
        {
            get { return _playbackSpeed; }
            set
            {
                _playbackSpeed = Mathf.Clamp(value, 0.01f, 8f);
                ApplyClock();
            }
        }

        /// <summary>Connection state, frame rate and latency (Stopped outside play mode). Allocates nothing.</summary>
        public ClientStatus Status
        {
            get
            {
                if (_client != null) return _client.Status;
                ClientStatus s = default(ClientStatus);
                s.Detail = _settingsError ?? (Application.isPlaying ? "disabled" : "connects in play mode");
                return s;
            }
        }

        /// <summary>The texture the newest frame was uploaded into (null before the first frame).</summary>
        public Texture2D Texture { get { return _renderer != null ? _renderer.Texture : null; } }

        /// <summary>What is known about the frame on screen (the pose it was generated for, its scene time).</summary>
        public FrameMeta ShownFrame { get { return _shown; } }

        /// <summary>Time.frameCount of the last frame a render pipeline drew the backdrop (-1: never).</summary>
        public int LastDrawnFrame { get { return _lastDrawnFrame; } }
    }
}
