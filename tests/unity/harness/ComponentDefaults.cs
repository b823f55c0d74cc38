// Runs the NeuralBackdrop component's connection settings for real, outside Unity: the component is
// compiled against the UnityEngine stubs (whose bodies do nothing), made with its default serialized
// values, and its CreateSettings() drives a real BackdropClient against the endpoint given. Prints one
// JSON object: the settings, the Welcome's agreed size and rate, and the first frame's size (what the
// component sizes its texture from). An optional second argument "WxH" sets the Resolution first.
// Built and run by tests/unity/test_unity_component_defaults.py.
using System;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using StarBridge;
using StarBridge.Core;

static class ComponentDefaults
{
    static int Main(string[] args)
    {
        NeuralBackdrop backdrop = new NeuralBackdrop();
        backdrop.name = "ComponentDefaults";
        backdrop.ServerAddress = args[0];
        if (args.Length > 1)
        {
            string[] size = args[1].Split('x');
            backdrop.Resolution = new UnityEngine.Vector2Int(int.Parse(size[0], CultureInfo.InvariantCulture),
                                                             int.Parse(size[1], CultureInfo.InvariantCulture));
        }
        BackdropSettings settings = backdrop.CreateSettings();
        string error = "";
        try
        {
            settings.Validate();
        }
        catch (ArgumentException e)
        {
            error = e.Message;
        }
        int welcomeWidth = 0, welcomeHeight = 0, frameWidth = 0, frameHeight = 0;
        float welcomeFps = 0f;
        if (error.Length == 0)
        {
            using (BackdropClient client = new BackdropClient(settings))
            {
                client.Start();
                Stopwatch watch = Stopwatch.StartNew();
                FrameBuffer frame = null;
                while (frame == null && watch.ElapsedMilliseconds < 20000)
                {
                    client.SubmitPose(new Vec3(0f, 0f, 0f), Quat.Identity, 60f, 16f / 9f);
                    if (!client.TryTakeFrame(out frame)) frame = null;
                    Thread.Sleep(16);
                }
                WelcomeInfo w = client.Status.Welcome;
                if (w != null)
                {
                    welcomeWidth = w.Width;
                    welcomeHeight = w.Height;
                    welcomeFps = w.Fps;
                }
                if (frame != null)
                {
                    frameWidth = frame.Width;
                    frameHeight = frame.Height;
                }
                else
                {
                    error = "no frame: " + client.Status.State + ": " + client.Status.Detail;
                }
            }
        }
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
            "{{\"width\": {0}, \"height\": {1}, \"fps\": {2}, \"welcome_width\": {3}, \"welcome_height\": {4}, " +
            "\"welcome_fps\": {5}, \"frame_width\": {6}, \"frame_height\": {7}, \"error\": \"{8}\"}}",
            settings.Width, settings.Height, settings.Fps, welcomeWidth, welcomeHeight, welcomeFps, frameWidth,
            frameHeight, error.Replace("\\", "\\\\").Replace("\"", "'").Replace("\n", " ")));
        return 0;
    }
}
