// Runs the netstandard2.1 runtime under Mono (the Meadow family's CLR): loads a flash image and a
// quantised input (int16 little-endian), classifies, prints one logit per line.
// Built by .ci/run with Debian's mcs against Mono's netstandard facade; C# kept to what mcs knows.
using System;
using System.IO;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;

static class MonoCheck
{
    static int Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: mono MonoCheck.exe IMAGE.img INPUT.bin");
            return 1;
        }
        using (var flash = new FileFlash(args[0]))
        {
            var engine = new InferenceEngine(FlashImage.Open(flash, true));
            byte[] bytes = File.ReadAllBytes(args[1]);
            var input = new short[bytes.Length / 2];
            Buffer.BlockCopy(bytes, 0, input, 0, bytes.Length);
            int[] logits = engine.Run(input);
            foreach (int v in logits) Console.WriteLine(v);
        }
        return 0;
    }
}
