// Compile-only stub: UnityEngine.Rendering members from UnityEngine (CoreModule), per Unity's scripting reference.
#pragma warning disable 1591
using System;

namespace UnityEngine.Rendering
{
    public class CommandBuffer : IDisposable
    {
        public CommandBuffer() { }
        public string name { get; set; }
        public void Clear() { }
        public void Release() { }
        public void Dispose() { }
        public void DrawProcedural(Matrix4x4 matrix, Material material, int shaderPass, MeshTopology topology, int vertexCount) { }
        public void DrawProcedural(Matrix4x4 matrix, Material material, int shaderPass, MeshTopology topology, int vertexCount, int instanceCount) { }
        public void DrawProcedural(Matrix4x4 matrix, Material material, int shaderPass, MeshTopology topology, int vertexCount, int instanceCount, MaterialPropertyBlock properties) { }
    }

    public enum CameraEvent
    {
        BeforeDepthTexture = 0, AfterDepthTexture = 1, BeforeDepthNormalsTexture = 2, AfterDepthNormalsTexture = 3,
        BeforeGBuffer = 4, AfterGBuffer = 5, BeforeLighting = 6, AfterLighting = 7, BeforeFinalPass = 8,
        AfterFinalPass = 9, BeforeForwardOpaque = 10, AfterForwardOpaque = 11, BeforeImageEffectsOpaque = 12,
        AfterImageEffectsOpaque = 13, BeforeSkybox = 14, AfterSkybox = 15, BeforeForwardAlpha = 16,
        AfterForwardAlpha = 17, BeforeImageEffects = 18, AfterImageEffects = 19, AfterEverything = 20,
    }

    public abstract class RenderPipelineAsset : ScriptableObject { }

    public sealed class GraphicsSettings : Object
    {
        public static RenderPipelineAsset currentRenderPipeline { get { return null; } }
    }

    public struct ScriptableRenderContext
    {
        public void ExecuteCommandBuffer(CommandBuffer commandBuffer) { }
    }
}

namespace UnityEngine
{
    public sealed class MaterialPropertyBlock { }
}
