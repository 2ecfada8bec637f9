using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Kernels;

namespace EdgeResNet.Tools.Quantization;

/// <summary>
/// The independent twin of the runtime: executes a quantised network whole-tensor, layer by
/// layer, with <see cref="ReferenceKernels"/> and <see cref="FixedPoint"/> only: no SIMD kernel,
/// no bands, no arena, no flash. The streaming runtime must match it bit for bit. Conv layers
/// are split over output-channel groups on the thread pool (the result does not depend on the
/// split). Thread-safe.
/// </summary>
public sealed class IntegerSimulator
{
    readonly QModel _model;
    readonly int[] _lastUse;

    public IntegerSimulator(QModel model)
    {
        _model = model;
        _lastUse = new int[model.Layers.Length + 1];
        for (int i = 0; i < model.Layers.Length; i++)
        {
            var l = model.Layers[i];
            _lastUse[l.Input0] = i;
            if (l.Input1 >= 0) _lastUse[l.Input1] = i;
        }
    }

    public QModel Model => _model;

    /// <summary>Integer logits (format: the last layer's OutFrac) for one quantised HWC input.</summary>
    /// <param name="observe">Called with each layer's index and output tensor as it is computed (int16, or int32 for the wide logits layer).</param>
    public int[] Run(short[] input, Action<int, short[], int[]>? observe = null)
    {
        if (input.Length != _model.InputSize) throw new ArgumentException($"input has {input.Length} values, the model expects {_model.InputSize}");
        var tensors = new short[]?[_model.Layers.Length + 1];
        tensors[0] = input;
        int[] logits = [];
        for (int i = 0; i < _model.Layers.Length; i++)
        {
            var l = _model.Layers[i];
            var output = new short[l.WideOutput ? 0 : l.OutSize];
            var x = tensors[l.Input0]!;
            switch (l.Op)
            {
                case QOp.Conv:
                    var wide = l.WideOutput ? new int[l.OutSize] : [];
                    Conv(l, x, output, wide);
                    if (l.WideOutput) logits = wide;
                    break;
                case QOp.MaxPool: ReferenceKernels.MaxPool(l, x, 0, output, 0, l.OutH, 0); break;
                case QOp.Add: ReferenceKernels.Add(l, x, tensors[l.Input1]!, output); break;
                case QOp.GlobalAvgPool: ReferenceKernels.GlobalAvgPool(l, x, output); break;
                default: throw new InvalidDataException($"layer {i} ({l.Name}): unknown operator {l.Op}");
            }
            observe?.Invoke(i, output, l.WideOutput ? logits : []);
            tensors[i + 1] = output;
            if (_lastUse[l.Input0] == i) tensors[l.Input0] = null;
            if (l.Input1 >= 0 && _lastUse[l.Input1] == i) tensors[l.Input1] = null;
        }
        return logits;
    }

    /// <summary>The reference conv over the whole tensor, one output-channel group per thread-pool work item.</summary>
    static void Conv(QLayer l, short[] input, short[] output, int[] wide)
    {
        int groupSize = Math.Max(1, (l.OutC + 4 * Environment.ProcessorCount - 1) / (4 * Environment.ProcessorCount));
        int groups = (l.OutC + groupSize - 1) / groupSize;
        Parallel.For(0, groups, g =>
        {
            int co = g * groupSize, n = Math.Min(groupSize, l.OutC - co);
            var tile = new ConvTile { CoStart = co, CoCount = n, OyCount = l.OutH, OutChannelBase = co, OutChannelStride = l.OutC };
            ReferenceKernels.Conv(l, tile, input, l.Weights.AsSpan(co * l.WeightStride, n * l.WeightStride), l.Multipliers, l.Offsets, output, wide);
        });
    }
}
