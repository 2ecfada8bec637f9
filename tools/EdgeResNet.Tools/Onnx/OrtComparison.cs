using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;

namespace EdgeResNet.Tools.Onnx;

public sealed record OrtComparisonResult(int Images, int Top1Agree, double MaxAbsLogitDiff, double MeanAbsLogitDiff);

/// <summary>Exports the float network, runs it in ONNX Runtime and compares logits with the float reference image by image.</summary>
public static class OrtComparison
{
    public static OrtComparisonResult Run(FloatReference reference, IReadOnlyList<LabeledImage> images, int threads)
    {
        string onnx = Path.Combine(Path.GetTempPath(), $"edgeresnet-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
        try
        {
            OnnxExporter.Save(reference.Network, onnx);
            using var ort = new OrtRunner(onnx, threads);
            int agree = 0;
            double max = 0, sum = 0;
            long count = 0;
            foreach (var image in images)
            {
                var input = CaffePreprocessing.Run(RgbImage.Load(image.Path));
                var ours = reference.Forward(input);
                var theirs = ort.Logits(input);
                if (Evaluator.TopK(ours, 1)[0] == Evaluator.TopK(theirs, 1)[0]) agree++;
                for (int i = 0; i < ours.Length; i++)
                {
                    double d = Math.Abs(ours[i] - theirs[i]);
                    max = Math.Max(max, d);
                    sum += d;
                    count++;
                }
            }
            return new OrtComparisonResult(images.Count, agree, max, count == 0 ? 0 : sum / count);
        }
        finally { File.Delete(onnx); }
    }
}
