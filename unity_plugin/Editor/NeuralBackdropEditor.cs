using System.Globalization;
using System.Threading;
using StarBridge.Core;
using UnityEditor;
using UnityEngine;

namespace StarBridge.Editor
{
    /// <summary>NeuralBackdrop's inspector: the settings, the live status, and a "Test connection" button.</summary>
    [CustomEditor(typeof(NeuralBackdrop))]
    sealed class NeuralBackdropEditor : UnityEditor.Editor
    {
        static readonly string[] Connection = { "_serverAddress", "_sceneId", "_resolution", "_frameRate", "_transport", "_token" };
        static readonly string[] Placement = { "_sceneAnchor", "_sceneScale", "_reproject", "_intensity" };
        static readonly string[] Clock = { "_paused", "_playbackSpeed" };

        ProbeResult _probe;
        volatile bool _probing;

        public override void OnInspectorGUI()
        {
            serializedObject.Update();
            Section("Connection", Connection);
            Section("Placement", Placement);
            Section("Scene clock", Clock);
            serializedObject.ApplyModifiedProperties();

            NeuralBackdrop backdrop = (NeuralBackdrop)target;
            DrawSettingsWarning(backdrop);
            EditorGUILayout.Space();
            EditorGUILayout.LabelField("Status", EditorStyles.boldLabel);
            DrawStatus(backdrop);
            DrawButtons(backdrop);
        }

        void Section(string title, string[] names)
        {
            EditorGUILayout.Space();
            EditorGUILayout.LabelField(title, EditorStyles.boldLabel);
            foreach (string n in names) EditorGUILayout.PropertyField(serializedObject.FindProperty(n));
        }

        // 0 for the size or rate is valid (the backend's default); negative ones, or one side 0, are not.
        static void DrawSettingsWarning(NeuralBackdrop backdrop)
        {
            try
            {
                backdrop.CreateSettings().Validate();
            }
            catch (System.ArgumentException e)
            {
                EditorGUILayout.HelpBox(e.Message, MessageType.Warning);
            }
        }

        static void DrawStatus(NeuralBackdrop backdrop)
        {
            ClientStatus s = backdrop.Status;
            EditorGUILayout.LabelField("Connection", s.State.ToString());
            if (!string.IsNullOrEmpty(s.Detail)) EditorGUILayout.HelpBox(s.Detail, MessageFor(s.State));
            if (!Application.isPlaying) return;
            EditorGUILayout.LabelField("Frames", string.Format(CultureInfo.InvariantCulture,
                "{0:0.0} fps, {1} received, {2} missed", s.FramesPerSecond, s.FramesReceived, s.FramesMissed));
            EditorGUILayout.LabelField("Latency", string.Format(CultureInfo.InvariantCulture,
                "pose to frame p50 {0:0.0} ms, p95 {1:0.0} ms; generation {2:0.0} ms", s.LatencyP50Ms, s.LatencyP95Ms, s.GenerationLatencyMs));
            if (s.Welcome != null)
            {
                EditorGUILayout.LabelField("Session", string.Format(CultureInfo.InvariantCulture,
                    "{0}: scene '{1}' ({2:0.0} s), {3}x{4}, {5}, backend {6}", s.Welcome.SessionId, s.Welcome.SceneId,
                    s.Welcome.SceneDurationS, s.Welcome.Width, s.Welcome.Height, s.Transport, s.Welcome.BackendVersion));
            }
            if (s.Reconnects > 0) EditorGUILayout.LabelField("Reconnections", s.Reconnects.ToString(CultureInfo.InvariantCulture));
            if (s.LastError != null) EditorGUILayout.HelpBox(s.ErrorCount + " error(s); last: " + s.LastError, MessageType.Warning);
            if (s.FramesReceived > 0 && Time.frameCount - backdrop.LastDrawnFrame > 30)
            {
                EditorGUILayout.HelpBox("Frames arrive but no render pipeline draws them. URP: add the \"StarBridge Neural Backdrop\" " +
                                        "renderer feature to the renderer. HDRP on 2022.3: add a global Custom Pass Volume with the " +
                                        "\"Neural Backdrop\" pass.", MessageType.Warning);
            }
        }

        void DrawButtons(NeuralBackdrop backdrop)
        {
            GUILayout.BeginHorizontal();
            using (new EditorGUI.DisabledScope(_probing))
            {
                if (GUILayout.Button(_probing ? "Testing..." : "Test connection")) StartProbe(backdrop.CreateSettings());
            }
            using (new EditorGUI.DisabledScope(!Application.isPlaying))
            {
                if (GUILayout.Button("Reconnect")) backdrop.Reconnect();
                if (GUILayout.Button(backdrop.Paused ? "Play" : "Pause")) backdrop.Paused = !backdrop.Paused;
            }
            GUILayout.EndHorizontal();
            ProbeResult probe = _probe;
            if (probe != null) EditorGUILayout.HelpBox(probe.Message, probe.Ok ? MessageType.Info : MessageType.Error);
        }

        void StartProbe(BackdropSettings settings)
        {
            _probing = true;
            _probe = null;
            // Off the main thread: the probe waits on the network (bounded by its timeout).
            ThreadPool.QueueUserWorkItem(state =>
            {
                _probe = ConnectionProbe.Run(settings, 3000);
                _probing = false;
            });
        }

        public override bool RequiresConstantRepaint() { return Application.isPlaying || _probing; }

        static MessageType MessageFor(ConnectionState state)
        {
            switch (state)
            {
                case ConnectionState.Streaming: return MessageType.Info;
                case ConnectionState.Refused: return MessageType.Error;
                case ConnectionState.Reconnecting: return MessageType.Warning;
                default: return MessageType.None;
            }
        }
    }
}
