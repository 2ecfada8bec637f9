using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EdgeResNet.Tools.Onnx;

/// <summary>Runs an exported model with ONNX Runtime (CPU, fp32): the independent float reference.</summary>
public sealed class OrtRunner : IDisposable
{
    readonly InferenceSession _session;
    readonly RunOptions _runOptions = new(); // kept alive for every Run: a collected RunOptions has crashed ORT mid-run
    readonly int[] _inputShape;

    public OrtRunner(string onnxPath, int threads)
    {
        using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        _session = new InferenceSession(onnxPath, options);
        var dims = _session.InputMetadata[OnnxExporter.InputName].Dimensions;
        _inputShape = [1, dims[1], dims[2], dims[3]];
    }

    /// <summary>Logits for one HWC image tensor.</summary>
    public float[] Logits(float[] input)
    {
        var tensor = new DenseTensor<float>(input, _inputShape);
        var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(OnnxExporter.InputName, tensor) };
        using var results = _session.Run(inputs, [OnnxExporter.LogitsName], _runOptions);
        var logits = results.First().AsTensor<float>().ToArray();
        GC.KeepAlive(inputs);
        return logits;
    }

    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }
}
