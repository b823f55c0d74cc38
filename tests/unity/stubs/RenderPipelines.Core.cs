// Compile-only stub of com.unity.render-pipelines.core (Unity.RenderPipelines.Core.Runtime): the members
// StarBridge's URP and HDRP passes use, per the package's API reference (14.0 for Unity 2022.3, 17.0 for
// Unity 6, STUB_UNITY_6). The render graph raster API exists in this form from 17.0 only.
#pragma warning disable 1591
using System;

namespace UnityEngine.Rendering
{
    public static class CommandBufferPool
    {
        public static CommandBuffer Get() { return null; }
        public static CommandBuffer Get(string name) { return null; }
        public static void Release(CommandBuffer buffer) { }
    }

    public class RTHandle { }

#if STUB_UNITY_6
    public abstract class ContextItem
    {
        public abstract void Reset();
    }

    public class ContextContainer : IDisposable
    {
        public T Get<T>() where T : ContextItem, new() { return null; }
        public void Dispose() { }
    }
#endif
}

#if STUB_UNITY_6
namespace UnityEngine.Rendering.RenderGraphModule
{
    [Flags]
    public enum AccessFlags { None = 0, Read = 1, Write = 2, Discard = 4, WriteAll = 6, ReadWrite = 3 }

    public struct TextureHandle { }

    public delegate void BaseRenderFunc<PassData, ContextType>(PassData data, ContextType renderGraphContext) where PassData : class, new();

    public class RasterCommandBuffer
    {
        public void DrawProcedural(Matrix4x4 matrix, Material material, int shaderPass, MeshTopology topology, int vertexCount) { }
        public void DrawProcedural(Matrix4x4 matrix, Material material, int shaderPass, MeshTopology topology, int vertexCount, int instanceCount) { }
        public void DrawProcedural(Matrix4x4 matrix, Material material, int shaderPass, MeshTopology topology, int vertexCount, int instanceCount, MaterialPropertyBlock properties) { }
    }

    public class RasterGraphContext
    {
        public RasterCommandBuffer cmd;
    }

    public interface IBaseRenderGraphBuilder : IDisposable
    {
        void AllowPassCulling(bool value);
    }

    public interface IRasterRenderGraphBuilder : IBaseRenderGraphBuilder
    {
        void SetRenderAttachment(TextureHandle tex, int index, AccessFlags flags = AccessFlags.Write);
        void SetRenderAttachmentDepth(TextureHandle tex, AccessFlags flags = AccessFlags.Write);
        void SetRenderFunc<PassData>(BaseRenderFunc<PassData, RasterGraphContext> renderFunc) where PassData : class, new();
    }

    public class RenderGraph
    {
        public IRasterRenderGraphBuilder AddRasterRenderPass<PassData>(string passName, out PassData passData,
            [System.Runtime.CompilerServices.CallerFilePath] string file = "",
            [System.Runtime.CompilerServices.CallerLineNumber] int line = 0) where PassData : class, new()
        {
            passData = null;
            return null;
        }
    }
}
#endif
