// Compile-only stub of com.unity.render-pipelines.universal (Unity.RenderPipelines.Universal.Runtime): the
// members StarBridge's renderer feature uses, per the URP API reference. 2022.3 (URP 14): Execute is the
// pass's abstract entry point. Unity 6 (URP 17, STUB_UNITY_6): RecordRenderGraph is, and Execute belongs to
// Compatibility Mode (obsolete, and compiled only with URP_COMPATIBILITY_MODE in newer releases).
#pragma warning disable 1591
using System;
#if STUB_UNITY_6
using UnityEngine.Rendering.RenderGraphModule;
#endif

namespace UnityEngine.Rendering.Universal
{
    public enum RenderPassEvent
    {
        BeforeRendering = 0, BeforeRenderingShadows = 50, AfterRenderingShadows = 100, BeforeRenderingPrePasses = 150,
        AfterRenderingPrePasses = 200, BeforeRenderingGbuffer = 210, AfterRenderingGbuffer = 220,
        BeforeRenderingDeferredLights = 230, AfterRenderingDeferredLights = 240, BeforeRenderingOpaques = 250,
        AfterRenderingOpaques = 300, BeforeRenderingSkybox = 350, AfterRenderingSkybox = 400,
        BeforeRenderingTransparents = 450, AfterRenderingTransparents = 500, BeforeRenderingPostProcessing = 550,
        AfterRenderingPostProcessing = 600, AfterRendering = 1000,
    }

    public struct CameraData
    {
        public Camera camera;
    }

    public struct RenderingData
    {
        public CameraData cameraData;
    }

    public abstract class ScriptableRenderer : IDisposable
    {
        public void EnqueuePass(ScriptableRenderPass pass) { }
        public void Dispose() { }
    }

    public abstract class ScriptableRenderPass
    {
        public RenderPassEvent renderPassEvent { get; set; }
#if STUB_UNITY_6
        public virtual void RecordRenderGraph(RenderGraph renderGraph, ContextContainer frameData) { }
#if URP_COMPATIBILITY_MODE
        [Obsolete("This rendering path is for compatibility mode only (when Render Graph is disabled). Use Render Graph API instead.", false)]
        public virtual void Execute(ScriptableRenderContext context, ref RenderingData renderingData) { }
#endif
#else
        public abstract void Execute(ScriptableRenderContext context, ref RenderingData renderingData);
#endif
    }

    public abstract class ScriptableRendererFeature : ScriptableObject, IDisposable
    {
        public abstract void Create();
        public abstract void AddRenderPasses(ScriptableRenderer renderer, ref RenderingData renderingData);
        protected virtual void Dispose(bool disposing) { }
        public void Dispose() { }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public class DisallowMultipleRendererFeature : Attribute
    {
        public DisallowMultipleRendererFeature(string customTitle = null) { }
    }

#if STUB_UNITY_6
    public class UniversalResourceData : ContextItem
    {
        public TextureHandle activeColorTexture { get { return default(TextureHandle); } }
        public TextureHandle activeDepthTexture { get { return default(TextureHandle); } }
        public override void Reset() { }
    }
#endif
}
