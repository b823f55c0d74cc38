// Compile-only stub of com.unity.render-pipelines.high-definition (Unity.RenderPipelines.HighDefinition.Runtime):
// the members StarBridge's custom pass uses, per the HDRP API reference (14.0 / 17.0). The global custom
// pass API is documented from HDRP 17 (Unity 6) on (STUB_UNITY_6).
#pragma warning disable 1591
using System;

namespace UnityEngine.Rendering.HighDefinition
{
    public enum CustomPassInjectionPoint
    {
        BeforeRendering = 0, AfterOpaqueDepthAndNormal = 5, BeforeTransparent = 1, BeforePreRefraction = 4,
        BeforePostProcess = 2, AfterPostProcess = 3,
    }

    public class HDCamera
    {
        public Camera camera;
    }

    public struct CustomPassContext
    {
        public readonly ScriptableRenderContext renderContext;
        public readonly CommandBuffer cmd;
        public readonly HDCamera hdCamera;
        public readonly RTHandle cameraColorBuffer;
        public readonly RTHandle cameraDepthBuffer;
    }

    [Serializable]
    public abstract class CustomPass
    {
        public bool enabled = true;
        public string name { get; set; }
        protected virtual void Setup(ScriptableRenderContext renderContext, CommandBuffer cmd) { }
        protected virtual void Execute(CustomPassContext ctx) { }
        protected virtual void Cleanup() { }
    }

    public class CustomPassVolume : MonoBehaviour
    {
        public CustomPassInjectionPoint injectionPoint;
        public bool isGlobal;
#if STUB_UNITY_6
        public static void RegisterGlobalCustomPass(CustomPassInjectionPoint injectionPoint, CustomPass customPassInstance, float priority = 0) { }
        public static bool UnregisterGlobalCustomPass(CustomPass customPassInstance) { return false; }
#endif
    }
}
