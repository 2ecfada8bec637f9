using EdgeResNet.Tools.Model;

namespace EdgeResNet.Tools.Float;

/// <summary>
/// The float32 reference forward pass: one plain kernel per operator, tensors HWC, one image at
/// a time. Thread-safe: callers run several images in parallel on one instance.
/// </summary>
public sealed class FloatReference
{
    readonly Network _net;
    readonly Dictionary<string, float[]> _packedKernels = new();
    readonly Dictionary<string, (float[] Scale, float[] Shift)> _batchNorm = new();
    readonly Dictionary<string, int> _lastUse = new();

    public FloatReference(Network net)
    {
        _net = net;
        for (int i = 0; i < net.Layers.Count; i++)
        {
            var l = net.Layers[i];
            foreach (var input in l.Inputs) _lastUse[input] = i;
            switch (l.Kind)
            {
                case LayerKind.Conv2D:
                    _packedKernels[l.Name] = Gemm.PackB(l.Kernel, l.KernelH * l.KernelW * In(l).C, l.OutShape.C);
                    break;
                case LayerKind.Dense:
                    _packedKernels[l.Name] = Gemm.PackB(l.Kernel, In(l).C, l.OutShape.C);
                    break;
                case LayerKind.BatchNorm:
                    _batchNorm[l.Name] = FloatOps.BatchNormScaleShift(l);
                    break;
            }
        }
    }

    public Network Network => _net;

    FloatReference(FloatReference other)
    {
        _net = other._net;
        _packedKernels = new Dictionary<string, float[]>(other._packedKernels);
        _batchNorm = other._batchNorm;
        _lastUse = other._lastUse;
    }

    /// <summary>The same network with conv or dense layer <paramref name="layer"/>'s kernel (HWIO / [in][out]) replaced, sharing every other layer (the mixed-precision search probes one layer's rounding at a time).</summary>
    public FloatReference WithKernel(string layer, float[] kernel)
    {
        var l = _net.ByName[layer];
        if (kernel.Length != l.Kernel.Length) throw new ArgumentException($"layer '{layer}' has {l.Kernel.Length} weights, not {kernel.Length}");
        var copy = new FloatReference(this);
        copy._packedKernels[layer] = Gemm.PackB(kernel, l.Kind == LayerKind.Dense ? In(l).C : l.KernelH * l.KernelW * In(l).C, l.OutShape.C);
        return copy;
    }

    Shape3 In(Layer l, int k = 0) => _net.ByName[l.Inputs[k]].OutShape;

    /// <summary>Runs one HWC input tensor to the logits (pre-softmax).</summary>
    /// <param name="observe">Called with every layer's output as it is computed (calibration uses it); the array must not be kept.</param>
    public float[] Forward(ReadOnlySpan<float> input, Action<Layer, float[]>? observe = null)
    {
        if (input.Length != _net.Input.OutShape.Size)
            throw new ArgumentException($"input has {input.Length} values; the network expects {_net.Input.OutShape} = {_net.Input.OutShape.Size}");
        var live = new Dictionary<string, float[]>();
        float[] output = input.ToArray();
        for (int i = 0; i < _net.Layers.Count; i++)
        {
            var l = _net.Layers[i];
            output = l.Kind switch
            {
                LayerKind.Input => output,
                LayerKind.ZeroPad => FloatOps.ZeroPad(live[l.Inputs[0]], In(l), l),
                LayerKind.Conv2D => FloatOps.Conv2D(live[l.Inputs[0]], In(l), l, _packedKernels[l.Name]),
                LayerKind.BatchNorm => FloatOps.BatchNorm(live[l.Inputs[0]], _batchNorm[l.Name]),
                LayerKind.Relu => FloatOps.Relu(live[l.Inputs[0]]),
                LayerKind.Add => FloatOps.Add(l.Inputs.Select(n => live[n]).ToArray()),
                LayerKind.MaxPool => FloatOps.MaxPool(live[l.Inputs[0]], In(l), l),
                LayerKind.GlobalAvgPool => FloatOps.GlobalAvgPool(live[l.Inputs[0]], In(l)),
                LayerKind.Dense => FloatOps.Dense(live[l.Inputs[0]], l, _packedKernels[l.Name]),
                _ => throw new NotSupportedException(l.Kind.ToString()),
            };
            observe?.Invoke(l, output);
            live[l.Name] = output;
            foreach (var n in l.Inputs)
                if (_lastUse[n] == i) live.Remove(n); // free what no later layer reads
        }
        return output;
    }

    /// <summary>Softmax of logits, computed in double for a stable display of probabilities.</summary>
    public static float[] Softmax(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++) sum += p[i] = Math.Exp(logits[i] - max);
        return p.Select(v => (float)(v / sum)).ToArray();
    }
}
