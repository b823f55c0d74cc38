using UnityEngine;

namespace StarBridge.Samples
{
    /// <summary>
    /// Moves the demo camera with no input needed: a slow look around (a yaw sweep with a little pitch) and a
    /// gentle sideways drift, so both the backdrop's reprojection (turning) and its parallax (moving) show.
    /// </summary>
    [AddComponentMenu("StarBridge/Samples/Demo Camera Path")]
    public sealed class DemoCameraPath : MonoBehaviour
    {
        [Tooltip("How far the camera looks left and right, degrees.")]
        [SerializeField] float _yawDegrees = 35f;

        [Tooltip("Seconds for one sweep left and right.")]
        [SerializeField, Min(1f)] float _period = 12f;

        [Tooltip("How far the camera drifts sideways, metres.")]
        [SerializeField] float _drift = 0.5f;

        Vector3 _start;

        void Start()
        {
            _start = transform.position;
        }

        void Update()
        {
            float phase = Time.time * 2f * Mathf.PI / _period;
            transform.rotation = Quaternion.Euler(-4f * Mathf.Sin(2f * phase), _yawDegrees * Mathf.Sin(phase), 0f);
            transform.position = _start + new Vector3(_drift * Mathf.Sin(0.5f * phase), 0f, 0f);
        }
    }
}
