using System;
using UnityEngine;
using UnityEngine.Rendering.HighDefinition;

namespace StarBridge.HighDefinition
{
    /// <summary>
    /// HDRP custom pass: draws the NeuralBackdrop of the rendering camera behind all geometry, after the sky.
    /// Unity 6 registers it as a global custom pass by itself (Before Pre Refraction, so refractive
    /// transparents see the backdrop); on Unity 2022.3 add a Custom Pass Volume (Global, injection point
    /// Before Pre Refraction) and add "Neural Backdrop" to it, with the default Camera targets.
    /// Colour is multiplied by HDRP's current exposure, so a bright sky stays bright whatever the exposure.
    /// </summary>
    [Serializable]
    public sealed class NeuralBackdropCustomPass : CustomPass
    {
        protected override void Execute(CustomPassContext ctx)
        {
            Camera camera = ctx.hdCamera.camera;
            NeuralBackdrop backdrop = NeuralBackdrop.ForCamera(camera);
            if (backdrop == null) return;
            // HDRP renders into textures with a projection flipped on platforms whose UVs start at the top.
            float clipYSign = SystemInfo.graphicsUVStartsAtTop ? -1f : 1f;
            Material material = backdrop.PrepareDraw(camera, clipYSign, true);
            if (material == null) return;
            ctx.cmd.DrawProcedural(Matrix4x4.identity, material, 0, MeshTopology.Triangles, 3, 1);
        }

#if UNITY_6000_0_OR_NEWER
        static NeuralBackdropCustomPass s_global;

        [RuntimeInitializeOnLoadMethod(RuntimeInitializeLoadType.AfterSceneLoad)]
        static void RegisterGlobally()
        {
            if (s_global != null) return;
            s_global = new NeuralBackdropCustomPass();
            s_global.name = "StarBridge Neural Backdrop";
            CustomPassVolume.RegisterGlobalCustomPass(CustomPassInjectionPoint.BeforePreRefraction, s_global);
        }
#endif
    }
}
