namespace EdgeResNet.Tools.Model;

/// <summary>Height x width x channels of one image's activation tensor (NHWC without N).</summary>
public readonly record struct Shape3(int H, int W, int C)
{
    public int Size => H * W * C;
    public override string ToString() => $"{H}x{W}x{C}";
}

public enum LayerKind { Input, ZeroPad, Conv2D, BatchNorm, Relu, Add, MaxPool, GlobalAvgPool, Dense }

/// <summary>
/// One node of the float network. Only the fields of its kind are set; the importer checks
/// shapes, so every consumer can trust them.
/// </summary>
public sealed class Layer
{
    public required string Name { get; init; }
    public required LayerKind Kind { get; init; }
    public required string[] Inputs { get; init; }
    public required Shape3 OutShape { get; init; }

    // Conv2D and MaxPool geometry. Padding is explicit (Keras "same" resolved at import).
    public int KernelH { get; init; }
    public int KernelW { get; init; }
    public int StrideH { get; init; } = 1;
    public int StrideW { get; init; } = 1;
    public int PadTop { get; init; }
    public int PadBottom { get; init; }
    public int PadLeft { get; init; }
    public int PadRight { get; init; }

    /// <summary>Conv2D: HWIO kernel, i.e. [kh][kw][cin][cout]; Dense: [in][out].</summary>
    public float[] Kernel { get; init; } = [];
    /// <summary>Conv2D / Dense: per output channel (zeros when the layer has no bias).</summary>
    public float[] Bias { get; init; } = [];

    // BatchNorm: y = gamma * (x - mean) / sqrt(var + epsilon) + beta, per channel.
    public float[] Gamma { get; init; } = [];
    public float[] Beta { get; init; } = [];
    public float[] Mean { get; init; } = [];
    public float[] Variance { get; init; } = [];
    public float Epsilon { get; init; }

    /// <summary>Dense: the model applies softmax after it (logits are the pre-softmax values).</summary>
    public bool Softmax { get; init; }

    public long WeightCount => Kernel.LongLength + Bias.Length + Gamma.Length + Beta.Length + Mean.Length + Variance.Length;

    public override string ToString() => $"{Kind} {Name} -> {OutShape}";
}

/// <summary>A float network in topological order: the first layer is the input, the last the logits.</summary>
public sealed class Network
{
    public Network(IReadOnlyList<Layer> layers)
    {
        if (layers.Count < 2 || layers[0].Kind != LayerKind.Input)
            throw new ModelFormatException("a network needs an input layer followed by at least one layer");
        Layers = layers;
        ByName = layers.ToDictionary(l => l.Name);
    }

    public IReadOnlyList<Layer> Layers { get; }
    public IReadOnlyDictionary<string, Layer> ByName { get; }
    public Layer Input => Layers[0];
    public Layer Output => Layers[^1];
    public int Classes => Output.OutShape.C;
    public long WeightCount => Layers.Sum(l => l.WeightCount);

    /// <summary>Multiply-accumulates of one forward pass (conv and dense).</summary>
    public long MacCount => Layers.Sum(l => l.Kind switch
    {
        LayerKind.Conv2D => (long)l.OutShape.Size * l.KernelH * l.KernelW * ByName[l.Inputs[0]].OutShape.C,
        LayerKind.Dense => (long)l.Kernel.Length,
        _ => 0,
    });
}

/// <summary>A model file that is malformed or uses something the importer does not support.</summary>
public sealed class ModelFormatException(string message) : FormatException(message);
