using UnityEngine;
using UnityEngine.Rendering;
using UnityEngine.Rendering.Universal;
#if UNITY_6000_0_OR_NEWER
using UnityEngine.Rendering.RenderGraphModule;
#endif

namespace StarBridge.Universal
{
    /// <summary>
    /// URP renderer feature: draws the NeuralBackdrop of each camera that has one, after the skybox and
    /// behind all geometry. Add it to your Universal Renderer asset (Add Renderer Feature > Neural Backdrop).
    /// Unity 6 records it into the render graph; Unity 2022.3 (and Unity 6's Compatibility Mode, with the
    /// URP_COMPATIBILITY_MODE scripting define) executes it directly.
    /// </summary>
    [DisallowMultipleRendererFeature("StarBridge Neural Backdrop")]
    public sealed class NeuralBackdropFeature : ScriptableRendererFeature
    {
        [Tooltip("When the backdrop is drawn. After the skybox (the default) covers it; geometry stays in front either way.")]
        [SerializeField] RenderPassEvent _passEvent = RenderPassEvent.AfterRenderingSkybox;

        BackdropPass _pass;

        public override void Create()
        {
            _pass = new BackdropPass();
            _pass.renderPassEvent = _passEvent;
        }

        public override void AddRenderPasses(ScriptableRenderer renderer, ref RenderingData renderingData)
        {
            Camera camera = renderingData.cameraData.camera;
            NeuralBackdrop backdrop = NeuralBackdrop.ForCamera(camera);
            if (backdrop == null) return;
            Material material = backdrop.PrepareDraw(camera, 0f, false);
            if (material == null) return; // no frame yet: the scene's own sky shows
            _pass.Material = material;
            _pass.renderPassEvent = _passEvent;
            renderer.EnqueuePass(_pass);
        }

        sealed class BackdropPass : ScriptableRenderPass
        {
            const string PassName = "StarBridge Neural Backdrop";
            public Material Material;

#if UNITY_6000_0_OR_NEWER
            sealed class PassData
            {
                public Material Material;
            }

            // Cached: a method group passed directly would allocate a delegate every frame.
            static readonly BaseRenderFunc<PassData, RasterGraphContext> s_draw = Draw;

            static void Draw(PassData data, RasterGraphContext context)
            {
                context.cmd.DrawProcedural(Matrix4x4.identity, data.Material, 0, MeshTopology.Triangles, 3, 1);
            }

            public override void RecordRenderGraph(RenderGraph renderGraph, ContextContainer frameData)
            {
                UniversalResourceData resources = frameData.Get<UniversalResourceData>();
                PassData data;
                using (IRasterRenderGraphBuilder builder = renderGraph.AddRasterRenderPass<PassData>(PassName, out data))
                {
                    data.Material = Material;
                    builder.SetRenderAttachment(resources.activeColorTexture, 0, AccessFlags.Write);
                    builder.SetRenderAttachmentDepth(resources.activeDepthTexture, AccessFlags.Read);
                    builder.AllowPassCulling(false);
                    builder.SetRenderFunc(s_draw);
                }
            }
#endif

#if !UNITY_6000_0_OR_NEWER || URP_COMPATIBILITY_MODE
#if UNITY_6000_0_OR_NEWER
            [System.Obsolete("URP Compatibility Mode (render graph disabled)")]
#endif
            public override void Execute(ScriptableRenderContext context, ref RenderingData renderingData)
            {
                // With no ConfigureTarget call the pass renders into the camera's colour and depth targets.
                CommandBuffer cmd = CommandBufferPool.Get(PassName);
                cmd.DrawProcedural(Matrix4x4.identity, Material, 0, MeshTopology.Triangles, 3, 1);
                context.ExecuteCommandBuffer(cmd);
                CommandBufferPool.Release(cmd);
            }
#endif
        }
    }
}
