using EdgeResNet.Tools.Imaging;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Evaluation;

/// <summary>Anything that turns a preprocessed float HWC tensor into class logits.</summary>
public interface IClassifier
{
    string Name { get; }
    /// <summary>What computes the logits, for reports: every command says which engine ran.</summary>
    string Engine { get; }
    double[] Logits(float[] input);
}

public sealed class FloatClassifier(FloatReference reference) : IClassifier
{
    public string Name => "float";
    public string Engine => "float32 reference (tools)";
    public FloatReference Reference => reference;
    public double[] Logits(float[] input) => reference.Forward(input).Select(v => (double)v).ToArray();
}

/// <summary>A packed flash image run by the integer simulator; logits are the integer ones scaled by their format.</summary>
public sealed class SimulatedClassifier(string name, IntegerSimulator simulator) : IClassifier
{
    public string Name => name;
    public string Engine => "integer simulator (reference kernels, whole tensors)";
    public IntegerSimulator Simulator => simulator;

    public static SimulatedClassifier FromImage(string path)
    {
        using var flash = new FileFlash(path);
        var model = FlashImage.Open(flash).LoadAll();
        CaffePreprocessing.CheckMatches(model);
        return new SimulatedClassifier(Path.GetFileName(path), new IntegerSimulator(model));
    }

    public int[] IntegerLogits(float[] input) => simulator.Run(Quantizer.QuantizeInput(input, simulator.Model));

    public double[] Logits(float[] input)
    {
        double scale = Math.Pow(2, -simulator.Model.Output.OutFrac);
        return IntegerLogits(input).Select(v => v * scale).ToArray();
    }
}
