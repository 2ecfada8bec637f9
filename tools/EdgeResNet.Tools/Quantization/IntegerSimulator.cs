using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Kernels;

namespace EdgeResNet.Tools.Quantization;

/// <summary>
/// Executes a quantised network whole-tensor, layer by layer, with the runtime's kernels and its
/// <see cref="FixedPoint"/> arithmetic: the bit-exact reference the streaming runtime must match.
/// Uses the SIMD conv where the CPU has it (checked bit-exact against the reference kernel in the
/// tests), or the reference kernel everywhere with <c>referenceOnly</c>. Thread-safe.
/// </summary>
public sealed class IntegerSimulator
{
    readonly QModel _model;
    readonly bool _fast;
    readonly short[]?[] _hi, _lo; // per layer: weight planes for the SIMD kernel when weights exceed 10 bits
    readonly int[] _lastUse;
    readonly ThreadLocal<(short[] Im2Col, long[] Acc)> _scratch;

    public IntegerSimulator(QModel model, bool referenceOnly = false)
    {
        _model = model;
        _fast = !referenceOnly && FastConv.IsSupported;
        _hi = new short[]?[model.Layers.Length];
        _lo = new short[]?[model.Layers.Length];
        _lastUse = new int[model.Layers.Length + 1];
        int im2col = 0, acc = 0;
        for (int i = 0; i < model.Layers.Length; i++)
        {
            var l = model.Layers[i];
            _lastUse[l.Input0] = i;
            if (l.Input1 >= 0) _lastUse[l.Input1] = i;
            if (l.Op != QOp.Conv) continue;
            im2col = Math.Max(im2col, FastConv.Im2ColShorts(l, l.OutH * l.OutW));
            acc = Math.Max(acc, l.OutH * l.OutW * l.OutC);
            if (l.WeightBits > 10)
            {
                _hi[i] = l.Weights.Select(w => (short)(w >> 8)).ToArray();
                _lo[i] = l.Weights.Select(w => (short)(w & 255)).ToArray();
            }
        }
        _scratch = new ThreadLocal<(short[], long[])>(() => (new short[im2col], new long[acc]));
    }

    public QModel Model => _model;

    /// <summary>Integer logits (format: the last layer's OutFrac) for one quantised HWC input.</summary>
    public int[] Run(short[] input)
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
                    var tile = ConvTile.Whole(l);
                    if (_fast)
                    {
                        var (im2col, acc) = _scratch.Value!;
                        FastConv.Conv(l, tile, x, _hi[i] ?? l.Weights, _lo[i] ?? [], l.Multipliers, l.Offsets, output, wide, im2col, acc);
                    }
                    else ReferenceKernels.Conv(l, tile, x, l.Weights, l.Multipliers, l.Offsets, output, wide);
                    if (l.WideOutput) logits = wide;
                    break;
                case QOp.MaxPool: ReferenceKernels.MaxPool(l, x, 0, output, 0, l.OutH, 0); break;
                case QOp.Add: ReferenceKernels.Add(l, x, tensors[l.Input1]!, output); break;
                case QOp.GlobalAvgPool: ReferenceKernels.GlobalAvgPool(l, x, output); break;
                default: throw new InvalidDataException($"layer {i} ({l.Name}): unknown operator {l.Op}");
            }
            tensors[i + 1] = output;
            if (_lastUse[l.Input0] == i) tensors[l.Input0] = null;
            if (l.Input1 >= 0 && _lastUse[l.Input1] == i) tensors[l.Input1] = null;
        }
        return logits;
    }
}
