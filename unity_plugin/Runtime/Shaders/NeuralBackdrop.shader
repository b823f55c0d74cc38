// The StarBridge backdrop: one full-screen triangle at the far plane, so everything the camera rendered
// stays in front (the depth test passes only where nothing was drawn, like a skybox), sampling the newest
// generated frame through a rotation-only homography (StarBridge.Core.Reprojection.Homography, computed
// on the CPU per camera): screen NDC (x right, y up) -> frame texture coordinates (u right, v = the
// frame's rows from the top, which is where LoadRawTextureData put them, so the row flip is in the matrix).
// No includes: the same code runs in the Built-in pipeline, URP and HDRP.
Shader "Hidden/StarBridge/NeuralBackdrop"
{
    Properties
    {
        _StarBridgeFrame ("Frame", 2D) = "black" {}
        _StarBridgeIntensity ("Intensity", Float) = 1
        _StarBridgeClipYSign ("Clip-space Y sign (0: _ProjectionParams.x)", Float) = 0
    }
    SubShader
    {
        Tags { "RenderType" = "Background" "Queue" = "Background" "PreviewType" = "Plane" }
        Pass
        {
            Name "NeuralBackdrop"
            ZTest LEqual
            ZWrite Off
            Cull Off
            Blend Off

            HLSLPROGRAM
            #pragma vertex Vert
            #pragma fragment Frag
            #pragma target 3.5
            #pragma multi_compile_local __ STARBRIDGE_HDRP_EXPOSURE

            Texture2D _StarBridgeFrame;
            SamplerState sampler_StarBridgeFrame;
            float4x4 _StarBridgeHomography;   // upper-left 3x3 used
            float _StarBridgeClipYSign;       // -1 / 1 from the pipeline (HDRP), or 0: use _ProjectionParams.x
            float _StarBridgeIntensity;
            float4 _ProjectionParams;         // x: -1 while rendering upside down into a texture (Built-in, URP)
            #if defined(STARBRIDGE_HDRP_EXPOSURE)
            Texture2D<float2> _ExposureTexture; // HDRP: x is the current exposure multiplier
            #endif

            struct Varyings
            {
                float4 positionCS : SV_POSITION;
                float2 ndc : TEXCOORD0;       // the camera's own screen coordinates, y up, whatever the target
            };

            Varyings Vert(uint id : SV_VertexID)
            {
                // (-1,-1), (3,-1), (-1,3): one triangle covering the screen
                float2 ndc = float2((id << 1) & 2, id & 2) * 2.0 - 1.0;
                float flip = _StarBridgeClipYSign != 0.0 ? _StarBridgeClipYSign : (_ProjectionParams.x != 0.0 ? _ProjectionParams.x : 1.0);
                Varyings o;
                #if defined(UNITY_REVERSED_Z)
                float farZ = 0.0;
                #else
                float farZ = 1.0;
                #endif
                o.positionCS = float4(ndc.x, ndc.y * flip, farZ, 1.0);
                o.ndc = ndc;
                return o;
            }

            float4 Frag(Varyings i) : SV_Target
            {
                float3 h = mul((float3x3)_StarBridgeHomography, float3(i.ndc, 1.0));
                if (h.z <= 1e-6)
                {
                    return float4(0.0, 0.0, 0.0, 1.0); // behind the camera the frame was made for
                }
                float2 uv = h.xy / h.z;             // outside [0, 1]: the clamped edge of the frame
                float3 rgb = _StarBridgeFrame.SampleLevel(sampler_StarBridgeFrame, uv, 0).rgb * _StarBridgeIntensity;
                #if defined(STARBRIDGE_HDRP_EXPOSURE)
                rgb *= _ExposureTexture.Load(int3(0, 0, 0)).x;
                #endif
                return float4(rgb, 1.0);
            }
            ENDHLSL
        }
    }
    Fallback Off
}
