// Runs the netstandard2.1 runtime under Mono (the Meadow family's CLR): loads a flash image and a
// quantised input (int16 little-endian), classifies, prints one logit per line. With a raw YUYV
// camera frame and its size instead of the input, preprocesses the frame in integers first.
// Built by .ci/run with Debian's mcs against Mono's netstandard facade; C# kept to what mcs knows.
using System;
using System.IO;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;

static class MonoCheck
{
    static int Main(string[] args)
    {
        if (args.Length != 2 && args.Length != 4)
        {
            Console.Error.WriteLine("usage: mono MonoCheck.exe IMAGE.img (INPUT.bin | FRAME.yuyv WIDTH HEIGHT)");
            return 1;
        }
        using (var flash = new FileFlash(args[0]))
        {
            var image = FlashImage.Open(flash, true);
            var engine = new InferenceEngine(image);
            byte[] bytes = File.ReadAllBytes(args[1]);
            int[] logits;
            if (args.Length == 4)
            {
                var frame = new Frame(int.Parse(args[2]), int.Parse(args[3]), PixelFormat.Yuyv, bytes);
                var preprocessor = FramePreprocessor.For(image.Model, frame.Width, frame.Height);
                preprocessor.Begin(frame);
                logits = engine.Run(preprocessor);
            }
            else
            {
                var input = new short[bytes.Length / 2];
                Buffer.BlockCopy(bytes, 0, input, 0, bytes.Length);
                logits = engine.Run(input);
            }
            foreach (int v in logits) Console.WriteLine(v);
        }
        return 0;
    }
}
